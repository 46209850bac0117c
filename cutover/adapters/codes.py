"""The table that turns a legacy core's raw response codes into canonical outcomes.

Legacy cores answer with codes of their own length and alphabet: two-character ISO 8583 style
codes ("00", "51"), three-digit ones ("051"), letters, or several response elements joined
("D-051", see ``[response_code]`` in docs/mapping.md). What each code
means (approve, decline, review, error), the canonical reason and whether a retry can help are
data in ``cutover/fixtures/codes/legacy_codes.toml``, not code, so a team can adapt it to its core.
A code that is not in the table is never guessed: it becomes decision "error", reason
"unknown_code", and ``unknown()`` lists such codes so a report can name them.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa

from cutover.domain import DECISIONS
from cutover.errors import ConfigError
from cutover.paths import fixtures_dir

#: The default table, relative to the fixtures directory.
CODES_RELPATH: Final = Path("codes") / "legacy_codes.toml"
RETRY_CLASSES: Final = ("none", "soft", "hard")
#: A response code is 1 to this many characters, of any alphabet.
CODE_CHARS_MAX: Final = 32
UNKNOWN_DECISION: Final = "error"
UNKNOWN_REASON: Final = "unknown_code"
UNKNOWN_RETRY: Final = "none"


@dataclass(frozen=True, slots=True)
class CodeInfo:
    """What one legacy code means: the decision, the canonical reason, the retry class."""

    decision: str
    reason: str
    retry: str


UNKNOWN: Final = CodeInfo(UNKNOWN_DECISION, UNKNOWN_REASON, UNKNOWN_RETRY)


def _entry(path: Path, code: str, raw: object) -> CodeInfo:
    """Validate one ``[codes."XX"]`` table; ConfigError names the file and the code."""
    where = f"{path}: [codes.{code!r}]"
    if not 0 < len(code) <= CODE_CHARS_MAX or not code.isprintable():
        raise ConfigError(f"{where}: a response code has 1 to {CODE_CHARS_MAX} printable"
                          " characters")
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{where}: expected a table with decision, reason, retry")
    values = {}
    for key in ("decision", "reason", "retry"):
        value = raw.get(key)
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{where}: missing or empty text field {key!r}")
        values[key] = value
    if values["decision"] not in DECISIONS:
        raise ConfigError(f"{where}: decision {values['decision']!r} is not one of {DECISIONS}")
    if values["retry"] not in RETRY_CLASSES:
        raise ConfigError(f"{where}: retry {values['retry']!r} is not one of {RETRY_CLASSES}")
    return CodeInfo(**values)


def _as_numpy(codes: pa.Array | pa.ChunkedArray | np.ndarray) -> np.ndarray:
    """Codes as a numpy array of str; a null becomes "" (which is never a known code)."""
    if isinstance(codes, pa.Array | pa.ChunkedArray):
        codes = codes.fill_null("").to_numpy(zero_copy_only=False)
    return np.asarray(codes).astype(str)


@dataclass(frozen=True)
class CodeTable:
    """Legacy code -> CodeInfo, with vectorised translation for whole batches."""

    entries: Mapping[str, CodeInfo]
    source: str = "<memory>"

    @classmethod
    def load(cls, path: str | Path | None = None) -> CodeTable:
        """Read a code table TOML (default: cutover/fixtures/codes/legacy_codes.toml)."""
        path = Path(path) if path is not None else fixtures_dir() / CODES_RELPATH
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the legacy code table: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
        codes = data.get("codes")
        if not isinstance(codes, Mapping) or not codes:
            raise ConfigError(f"{path}: missing or empty [codes] table")
        entries = {str(code): _entry(path, str(code), raw) for code, raw in codes.items()}
        return cls(entries=entries, source=str(path))

    def lookup(self, code: str) -> CodeInfo:
        """Return the meaning of one code; an unknown code is UNKNOWN, never a guess."""
        return self.entries.get(code, UNKNOWN)

    def translate(self, codes: pa.Array | pa.ChunkedArray | np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Translate a batch of codes to (decisions, reasons, retry) numpy str arrays.

        Vectorised: one searchsorted over the sorted known codes; rows whose code is not
        known (or null) get decision "error", reason "unknown_code", retry "none".
        """
        values = _as_numpy(codes)
        keys = np.array(sorted(self.entries), dtype=str)
        infos = [self.entries[k] for k in keys]
        table = {
            field: np.array([getattr(i, field) for i in infos] + [getattr(UNKNOWN, field)],
                            dtype=object)
            for field in ("decision", "reason", "retry")
        }
        pos = np.searchsorted(keys, values)
        pos_safe = np.minimum(pos, len(keys) - 1)
        known = keys[pos_safe] == values
        index = np.where(known, pos_safe, len(keys))
        return table["decision"][index], table["reason"][index], table["retry"][index]

    def unknown(self, codes: pa.Array | pa.ChunkedArray | np.ndarray) -> list[str]:
        """Return the sorted distinct codes of ``codes`` that the table does not know."""
        values = np.unique(_as_numpy(codes))
        return sorted(str(v) for v in values if str(v) not in self.entries)

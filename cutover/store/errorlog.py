"""The errors of one command, by kind: counts, the first of each verbatim, all in a file.

``record``, ``calibrate``, a live replay and ``import`` talk to things that fail in many ways
(a fault naming a missing element, an HTTP status, a value a map does not hold). A user
must see the real cause, not "error 50": each command feeds its failures here, prints
``summary()`` (counts by kind and the first message of each kind, word for word), writes every
failure as one JSON line, and calls ``check()`` so it exits non-zero when nothing useful
happened or the error rate crossed its limit.

Messages pass through the caller's ``scrub`` (the PAN masker) before they are kept or written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from cutover.errors import ErrorRateExceeded, InputError, NothingUseful

#: The documented default of every --max-error-rate: 5% of calls or rows may fail.
MAX_ERROR_RATE_DEFAULT: Final = 0.05
#: Kinds listed in one summary before "and N more kinds".
KINDS_SHOWN_MAX: Final = 10
MESSAGE_CHARS_MAX: Final = 400


@dataclass
class ErrorLog:
    """Failures by kind, with the first message of each; optionally every one as JSON lines."""

    path: Path | None = None
    scrub: Callable[[str], str] = str
    counts: dict[str, int] = field(default_factory=dict)
    first: dict[str, str] = field(default_factory=dict)
    _handle: IO[str] | None = None

    def __post_init__(self) -> None:
        if self.path is not None:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "w", encoding="utf-8")  # noqa: SIM115 - closed in close()

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def add(self, kind: str, message: str, **context: Any) -> None:
        """Count one failure of ``kind``; keep its message if it is the first of its kind."""
        message = self.scrub(str(message))[:MESSAGE_CHARS_MAX]
        self.counts[kind] = self.counts.get(kind, 0) + 1
        self.first.setdefault(kind, message)
        if self._handle is not None:
            line = json.dumps({"kind": kind, "message": message} | context, default=str,
                              sort_keys=True)
            self._handle.write(self.scrub(line) + "\n")

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def summary(self, attempts: int, what: str = "calls") -> list[str]:
        """Lines: the failure count, then per kind its count and first message verbatim."""
        if not self.counts:
            return []
        lines = [f"{self.total} of {attempts} {what} failed"
                 + (f"; every one is in {self.path}" if self.path else "")]
        kinds = sorted(self.counts.items(), key=lambda kv: (-kv[1], kv[0]))
        for kind, count in kinds[:KINDS_SHOWN_MAX]:
            lines.append(f"  {kind} x{count}: {self.first[kind]}")
        if len(kinds) > KINDS_SHOWN_MAX:
            lines.append(f"  and {len(kinds) - KINDS_SHOWN_MAX} more kinds")
        return lines

    def as_dict(self, attempts: int) -> dict[str, Any]:
        return {"attempts": attempts, "failed": self.total, "by_kind": dict(self.counts),
                "first": dict(self.first), "errors_file": str(self.path) if self.path else None}

    def check(self, attempts: int, max_error_rate: float, what: str = "calls") -> None:
        """Raise when every attempt failed (NothingUseful, exit 3) or the share of failures
        is above ``max_error_rate`` (ErrorRateExceeded, exit 1); the message is the summary."""
        if attempts and self.total >= attempts:
            raise NothingUseful("\n".join(["nothing useful happened: " + self.summary(
                attempts, what)[0], *self.summary(attempts, what)[1:]]))
        if attempts and self.total / attempts > max_error_rate:
            raise ErrorRateExceeded("\n".join([
                f"error rate {self.total / attempts:.1%} is above --max-error-rate "
                f"{max_error_rate:.1%}: " + self.summary(attempts, what)[0],
                *self.summary(attempts, what)[1:]]))


def read_error_file(path: Path, rows_max: int = 1_000_000) -> ErrorLog:
    """An ErrorLog (counts, first message of each kind) of a JSON-lines errors file."""
    log = ErrorLog()
    log.path = Path(path)
    if not Path(path).is_file():
        return log
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle):
            if number >= rows_max:
                break
            try:
                row = json.loads(line)
            except ValueError:
                continue
            log.add(str(row.get("kind")), str(row.get("message")))
    return log


def check_rate_option(value: float) -> float:
    """A --max-error-rate value must be a share between 0 and 1."""
    if not 0.0 <= value <= 1.0:
        raise InputError(f"--max-error-rate {value}: a share between 0 and 1 (0.05 is 5%)")
    return value

"""The TUI's only write: an operator marks a mismatch pattern as expected in diff_rules.toml.

The rule format and the write belong to the replay area (``cutover.shadow.diff_rules``), which
validates the whole file before replacing it atomically; the next replay reads the rule. This
module only checks the operator's input early, so the dialog can say what is wrong before
anything touches the disk.
"""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from cutover.domain import MISMATCH_CATEGORIES
from cutover.errors import CutoverError
from cutover.shadow.diff_rules import append_expected_rule

RULES_FILE: Final = "diff_rules.toml"
REASON_CHARS_MAX: Final = 2000


@dataclass(frozen=True)
class ExpectedPattern:
    """A mismatch pattern to accept: category, changed fields, segment; who and why."""

    category: str
    fields: tuple[str, ...]
    segment: dict[str, str]
    reason: str
    by: str

    def problems(self) -> list[str]:
        """Why this pattern cannot be saved; empty when it can (the writer checks the rest)."""
        found = []
        if self.category not in MISMATCH_CATEGORIES:
            found.append(f"category must be one of {', '.join(MISMATCH_CATEGORIES)}")
        if not self.reason.strip():
            found.append("a reason is required: the rule records why the change is expected")
        if len(self.reason) > REASON_CHARS_MAX:
            found.append(f"the reason is longer than {REASON_CHARS_MAX} characters")
        if not self.by.strip():
            found.append("operator name is required")
        return found


def default_operator() -> str:
    """$USER, else the login name."""
    return os.environ.get("USER") or getpass.getuser()


def parse_fields(text: str) -> tuple[str, ...]:
    """``"route, fee_minor"`` -> ("route", "fee_minor")."""
    return tuple(f.strip() for f in text.split(",") if f.strip())


def parse_segment_pairs(text: str) -> dict[str, str]:
    """``"merchant_id=M1, channel=ecom"`` -> {"merchant_id": "M1", "channel": "ecom"}."""
    segment: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        dimension, sep, value = part.partition("=")
        if not sep or not dimension.strip() or not value.strip():
            raise ValueError(f"segment {part!r} must be DIMENSION=VALUE")
        segment[dimension.strip()] = value.strip()
    return segment


def append_expected(run_dir: Path, pattern: ExpectedPattern,
                    at: datetime | None = None) -> dict[str, Any]:
    """Append ``pattern`` to RUN_DIR/diff_rules.toml; ValueError saying what is wrong."""
    problems = pattern.problems()
    if problems:
        raise ValueError("; ".join(problems))
    try:
        return append_expected_rule(Path(run_dir) / RULES_FILE, category=pattern.category,
                                    fields=list(pattern.fields), segment=dict(pattern.segment),
                                    reason=pattern.reason.strip(), by=pattern.by.strip(), at=at)
    except CutoverError as exc:
        # The rules module names the file and key; the dialog shows that text as is.
        raise ValueError(str(exc)) from exc

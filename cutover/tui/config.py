"""What the TUI was started on: the run directory, the optional stores, follow mode."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

#: Follow mode polls the run at this period; the issue asks for at least once a second.
FOLLOW_INTERVAL_S: Final = 1.0


@dataclass(frozen=True)
class TuiConfig:
    """Options of `cutover tui`; ``clock`` lets tests pin the plan's bake clock."""

    run_dir: Path
    plan_db: str | None = None
    ledger_url: str | None = None
    follow: bool = False
    follow_interval_s: float = FOLLOW_INTERVAL_S
    clock: Callable[[], datetime] | None = None
    start: str = "overview"

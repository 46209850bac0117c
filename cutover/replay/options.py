"""What a replay is asked to do, as one value shared by the CLI, the local and the Ray engine.

Both engines took the same fifteen keyword arguments and checked them apart; one frozen value
checked once on construction keeps them from drifting. Where the cluster is (Ray's address and
workers) and how progress is shown are not options of the replay's output, so they stay
arguments of the engine that needs them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Final

from cutover.adapters.candidate import DEFAULT_CANDIDATE
from cutover.errors import InputError
from cutover.store.filters import Narrowing, parse_when

BATCH_ROWS_DEFAULT: Final = 65_536
#: A batch larger than this would hold several hundred MB of rows in each pipeline stage.
BATCH_ROWS_MAX: Final = 4_000_000
LEGACY_MODES: Final = ("recorded", "soap", "cassette")


@dataclass(frozen=True)
class ReplayOptions:
    """A replay's settings: who decides, what is read, and how the run directory is treated."""

    candidate: str = DEFAULT_CANDIDATE
    candidate_options: dict[str, str] = field(default_factory=dict)
    legacy: str = "recorded"
    legacy_options: dict[str, Any] = field(default_factory=dict)
    since: Any = None
    until: Any = None
    merchant: str | None = None
    sample: float | None = None
    limit: int | None = None
    resume: bool = False
    force: bool = False
    rules: Path | None = None
    batch_rows: int = BATCH_ROWS_DEFAULT

    def __post_init__(self) -> None:
        if not 0 < self.batch_rows <= BATCH_ROWS_MAX:
            raise InputError(f"--batch-rows {self.batch_rows}: must be 1 to {BATCH_ROWS_MAX:,}")
        if self.sample is not None and not (math.isfinite(self.sample) and 0 < self.sample <= 1):
            raise InputError(f"--sample {self.sample}: must be a share in (0, 1]")
        if self.limit is not None and self.limit <= 0:
            raise InputError(f"--limit {self.limit}: must be positive")
        # Frozen, yet the caller's dicts must not change the run under it: keep copies.
        object.__setattr__(self, "candidate_options", dict(self.candidate_options or {}))
        object.__setattr__(self, "legacy_options", dict(self.legacy_options or {}))

    @classmethod
    def of(cls, **values: Any) -> ReplayOptions:
        """Options from keyword arguments (None for a dict means empty); unknown names refused."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise TypeError(f"unknown replay option(s) {unknown}; known: {sorted(known)}")
        for name in ("candidate_options", "legacy_options"):
            if values.get(name) is None:
                values.pop(name, None)
        return cls(**values)

    def narrowing(self) -> Narrowing:
        """The rows this replay reads, as the store's filter."""
        return Narrowing(parse_when(self.since), parse_when(self.until, "--until"),
                         self.merchant, self.sample, self.limit)

    def settings(self, store: Path) -> dict[str, Any]:
        """What decides a run's output, as plain data: run.json's settings and the fingerprint."""
        return {"store": str(Path(store).resolve()), "candidate": self.candidate,
                "candidate_options": dict(sorted(self.candidate_options.items())),
                "legacy": self.legacy,
                "legacy_options": {k: str(v) for k, v in sorted(self.legacy_options.items())},
                "narrowing": self.narrowing().as_dict(), "batch_rows": self.batch_rows}

"""Which requests the candidate answers: the plan's current phase, re-read twice a second.

The mirror never caches a phase for long: ``plan rollback`` (or ``advance``) written by
another process takes effect within ``POLL_S`` with no restart. When the plan database
cannot be read the last phase read stays in force and the failure is counted; when no phase
was ever read, every request goes to the legacy core (the safe side).
"""

from __future__ import annotations

import threading
from typing import Any, Final

from cutover.errors import CutoverError
from cutover.migrate.state import PlanMachine, current_phase

POLL_S: Final = 0.5
CANDIDATE: Final = "candidate"


class PhaseWatch:
    """Polls a plan database on a daemon thread; ``answers_with_candidate(txn)`` is cheap."""

    def __init__(self, url: str | None, poll_s: float = POLL_S) -> None:
        self.url = url
        self.poll_s = poll_s
        self.plan: Any = None
        self.phase: str | None = None
        self.read_failures = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if url is not None:
            import sqlalchemy as sa

            self._machine = PlanMachine(sa.create_engine(url))
            self.refresh()
            self._thread = threading.Thread(target=self._loop, name="plan-watch", daemon=True)
            self._thread.start()

    def refresh(self) -> None:
        """Read the plan and its current phase once (the loop calls this every ``poll_s``)."""
        try:
            plan, events = self._machine.state()
        except (CutoverError, Exception):  # noqa: BLE001 - a plan db hiccup must not stop traffic
            self.read_failures += 1
            return
        self.plan, self.phase = plan, current_phase(events)

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_s):
            self.refresh()

    def answers_with_candidate(self, txn: dict[str, Any]) -> bool:
        """True when the current phase's cohort holds ``txn``."""
        plan, phase = self.plan, self.phase
        if plan is None or phase is None:
            return False
        return bool(plan.assign(txn, phase) == CANDIDATE)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2 * self.poll_s)

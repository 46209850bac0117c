"""A background WAL checkpointer for SQLite bulk applies.

In WAL mode every committed page is written twice: to the WAL, then back into the database by a
checkpoint. SQLite normally checkpoints inside the committing call, stalling the writer for a
second per large part. During an apply the writer turns automatic checkpoints off and this
thread checkpoints on its own connection instead; the sqlite3 driver releases the GIL while
SQLite works, so the copy overlaps the next part's writes. The WAL never grows past about one
part, because the writer nudges after every commit and waits for the last one at the end.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Final

#: How long ``close`` waits for the last checkpoint before leaving it to SQLite.
CLOSE_WAIT_S: Final = 120.0
BUSY_TIMEOUT_MS: Final = 120_000


class WalCheckpointer:
    """``nudge()`` after each commit; ``close()`` when done (runs a final checkpoint)."""

    def __init__(self, db_path: Path) -> None:
        self._path = str(db_path)
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="ledger-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Ask for a checkpoint of what has been committed so far."""
        self._wake.set()

    def close(self) -> None:
        """Run a last checkpoint and stop the thread."""
        self._stop.set()
        self._wake.set()
        self._thread.join(CLOSE_WAIT_S)

    def _run(self) -> None:
        try:
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            try:
                while True:
                    self._wake.wait()
                    self._wake.clear()
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    if self._stop.is_set():
                        return
            finally:
                conn.close()
        except sqlite3.Error as exc:  # a failed checkpoint loses nothing: SQLite retries later
            self.error = exc

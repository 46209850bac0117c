"""The shared shape of a screen over the run: load in a worker, render on the UI thread.

``load`` starts a thread worker that calls ``fetch`` (file and database work, off the UI
thread) and hands its result to ``show`` on the UI thread. A failure is shown in the screen's
status line rather than raised, so one unreadable store never takes the whole UI down.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from textual import work
from textual.binding import Binding
from textual.screen import Screen
from textual.worker import get_current_worker

from cutover.tui.messages import RunChanged

if TYPE_CHECKING:
    from cutover.tui.app import CutoverApp


def screen_keys_unlisted(prefix: str) -> list[Binding]:
    """The app's screen keys (o d l p), still working but left off this screen's key bar:
    a screen with many keys of its own would otherwise have its bar cut at 80 columns
    (help, ?, lists them)."""
    return [Binding(key, f"app.switch_mode('{mode}')", label, show=False,
                    id=f"{prefix}.{mode}")
            for key, mode, label in (("o", "overview", "Overview"), ("d", "diffs", "Diffs"),
                                     ("l", "ledger", "Ledger"), ("p", "plan", "Plan"))]


class RunScreen(Screen):
    """A screen that shows one view of the run and reloads when the run changes."""

    #: False until the first load has been shown (or has failed); tests wait on ``busy``.
    loaded = False

    @property
    def busy(self) -> bool:
        """True until the screen shows what it was asked to read."""
        return not self.loaded

    @property
    def tui(self) -> CutoverApp:
        """The app, typed."""
        return self.app  # type: ignore[return-value]

    def on_screen_resume(self) -> None:
        """Coming back to a screen shows the run as it is now, not as it was."""
        self.load()

    def on_run_changed(self, _message: RunChanged) -> None:
        """Follow mode: the run grew."""
        self.load()

    def action_refresh(self) -> None:
        """Read the stores again."""
        self.load()

    def load(self) -> None:
        """Fetch in a worker and show the result."""
        self._load_worker()

    @work(thread=True, exclusive=True, group="load", exit_on_error=False)
    def _load_worker(self) -> None:
        worker = get_current_worker()
        try:
            data = self.fetch()
        except Exception as exc:  # noqa: BLE001 - shown to the operator; the UI must stay up
            if not worker.is_cancelled:
                self.app.call_from_thread(self._apply, self.show_error,
                                          f"{type(exc).__name__}: {exc}")
            return
        if not worker.is_cancelled:
            self.app.call_from_thread(self._apply, self.show, data)

    def _apply(self, render: Any, data: Any) -> None:
        render(data)
        self.loaded = True

    def fetch(self) -> Any:
        """Read what the screen shows; runs in a worker thread."""
        raise NotImplementedError

    def show(self, data: Any) -> None:
        """Render ``data``; runs on the UI thread."""
        raise NotImplementedError

    def show_error(self, text: str) -> None:
        """Tell the operator a read failed."""
        self.notify(text, title="read failed", severity="error", timeout=8)

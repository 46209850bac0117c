"""The `cutover tui` app: four screens as modes, a help screen, the command palette, and the
follow-mode poll that tells the current screen when the run has grown."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from functools import partial

from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from cutover.tui.config import TuiConfig
from cutover.tui.messages import RunChanged
from cutover.tui.screens.diffs import DiffsScreen
from cutover.tui.screens.help import HelpScreen
from cutover.tui.screens.ledger import LedgerScreen
from cutover.tui.screens.overview import OverviewScreen, mismatch_categories
from cutover.tui.screens.plan import PlanScreen
from cutover.tui.views.counts import CountsCache
from cutover.tui.views.run import fingerprint

#: How long the "refreshed" notice stays up.
REFRESH_NOTICE_S = 3.0
SCREENS_BY_KEY = (("o", "overview", "Overview"), ("d", "diffs", "Diffs"),
                  ("l", "ledger", "Ledger"), ("p", "plan", "Plan"))


class CutoverApp(App[None]):
    """Read-only views of one run directory, its shadow ledger and the cutover plan."""

    CSS_PATH = "app.tcss"
    TITLE = "cutover"
    MODES = {"overview": OverviewScreen, "diffs": DiffsScreen, "ledger": LedgerScreen,
             "plan": PlanScreen}
    BINDINGS = [
        *(Binding(key, f"switch_mode('{mode}')", label, id=f"app.{mode}")
          for key, mode, label in SCREENS_BY_KEY),
        Binding("r", "refresh", "Refresh", id="app.refresh"),
        Binding("question_mark", "help", "Help", id="app.help"),
        Binding("q", "quit", "Quit", id="app.quit"),
    ]

    def __init__(self, config: TuiConfig) -> None:
        super().__init__()
        self.config = config
        self.counts_cache = CountsCache()
        self.sub_title = config.run_dir.name + (" · follow" if config.follow else "")
        self._seen: tuple[object, ...] | None = None

    def on_mount(self) -> None:
        self.switch_mode(self.config.start)
        if self.config.follow:
            self.set_interval(self.config.follow_interval_s, self._poll, name="follow")

    def _poll(self) -> None:
        self._poll_worker()

    @work(thread=True, exclusive=True, group="follow", exit_on_error=False)
    def _poll_worker(self) -> None:
        # Stat-only, so a poll never competes with the replay for the disk.
        marks = fingerprint(self.config.run_dir)
        if self._seen is not None and marks != self._seen:
            self.call_from_thread(self._run_changed)
        self._seen = marks

    def _run_changed(self) -> None:
        self.screen.post_message(RunChanged())
        for screen in self.screen_stack[:-1]:
            screen.post_message(RunChanged())

    def action_refresh(self) -> None:
        """Ask the current screen to read the stores again, and say so: a refresh that
        changes nothing on screen must still show it happened."""
        self.screen.post_message(RunChanged())
        self.notify(f"re-read the run at {datetime.now(UTC):%H:%M:%S} UTC",
                    title="refreshed", timeout=REFRESH_NOTICE_S)

    def action_help(self) -> None:
        """Show the key reference (or close it)."""
        if isinstance(self.screen, HelpScreen):
            self.screen.dismiss(None)
        else:
            self.push_screen(HelpScreen())

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for _key, mode, label in SCREENS_BY_KEY:
            yield SystemCommand(f"Go to {label}", f"Show the {label} screen",
                                partial(self.switch_mode, mode))
        yield SystemCommand("Help", "Every key of the TUI", self.action_help)
        for category in mismatch_categories():
            yield SystemCommand(f"Diffs: only {category}", f"Filter the diffs to {category}",
                                partial(self.open_diffs, category))

    def open_diffs(self, category: str | None = None,
                   segment: tuple[str, str] | None = None) -> None:
        """Show Diffs filtered to a category and/or a segment (palette, Overview drill-down)."""
        self.switch_mode("diffs")
        self.call_after_refresh(self._filter_diffs, category, segment)

    def _filter_diffs(self, category: str | None, segment: tuple[str, str] | None) -> None:
        screen = self.screen
        if isinstance(screen, DiffsScreen):
            screen.apply_filters(category, segment)

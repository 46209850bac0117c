"""Help: every key of the TUI in one place, with what each screen is for."""

from __future__ import annotations

from typing import Final

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

HELP_TEXT: Final = """\
cutover tui: what the candidate is doing, in a few keystrokes

screens    o overview  d diffs  l ledger  p plan  (any screen)
overview   enter on a category or a worst segment opens its diffs
anywhere   ? help  r refresh  ctrl+p command palette  q quit
diffs      enter detail  [ ] prev/next page  s sort key  v reverse
           / find txn id  f filter bar  e mark pattern expected
filter bar tab next field; enter applies and goes back to the
           table; escape goes back to the table (enter: detail)
           segment: DIMENSION=VALUE (merchant_id, merchant_country,
           channel, mcc); min USD and the amount sort are in USD
           at indicative rates (currencies do not compare)
detail     escape back  e mark pattern expected
expected   appends an [[expected]] rule (category, fields, segment,
           reason, by, at) to RUN_DIR/diff_rules.toml for the next
           replay. The TUI writes nothing else.
follow     --follow re-reads the run every second

escape or ? closes this help"""


class HelpScreen(ModalScreen[None]):
    """The key reference."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close", id="help.close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield Static(HELP_TEXT, markup=False, id="help-text")

    def action_close(self) -> None:
        """Back to the screen underneath."""
        self.dismiss(None)

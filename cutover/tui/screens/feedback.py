"""Operator feedback: mark a mismatch pattern (category + fields + segment) as expected.

The dialog is the TUI's only write. It appends one rule to RUN_DIR/diff_rules.toml with who,
when and why, so the next replay classifies the pattern as expected.
"""

from __future__ import annotations

from typing import Any

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from cutover.tui.views.feedback import (
    ExpectedPattern,
    append_expected,
    default_operator,
    parse_fields,
    parse_segment_pairs,
)


class FeedbackScreen(ModalScreen[dict[str, Any] | None]):
    """A form prefilled from a diff row; dismisses with the rule once it is written."""

    BINDINGS = [Binding("escape", "cancel", "Cancel", id="feedback.cancel")]

    def __init__(self, category: str, fields: str, segment: str) -> None:
        super().__init__()
        self.initial = {"category": category, "fields": fields, "segment": segment}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> FeedbackScreen:
        """Prefill category, fields and the merchant segment from a diff row."""
        merchant = row.get("merchant_id")
        return cls(str(row.get("category") or ""), ",".join(row.get("fields") or []),
                   f"merchant_id={merchant}" if merchant else "")

    def compose(self) -> ComposeResult:
        with Vertical(id="feedback"):
            yield Static("Mark this pattern as expected (appends to diff_rules.toml)", markup=False,
                         id="feedback-title")
            with Grid(id="feedback-form"):
                for key, label, value, hint in (
                        ("category", "category", self.initial["category"], ""),
                        ("fields", "fields", self.initial["fields"], "comma separated"),
                        ("segment", "segment", self.initial["segment"], "dim=value, ..."),
                        ("reason", "reason", "", "why this change is expected"),
                        ("by", "by", default_operator(), "operator")):
                    yield Label(label)
                    yield Input(value=value, placeholder=hint, id=f"fb-{key}")
            yield Static("", markup=False, id="feedback-error")
            with Horizontal(id="feedback-buttons"):
                yield Button("Save rule", variant="primary", id="fb-save")
                yield Button("Cancel", id="fb-cancel")

    def on_mount(self) -> None:
        self.query_one("#fb-reason", Input).focus()

    def pattern(self) -> ExpectedPattern:
        """The form as a pattern; ValueError when the segment text is malformed."""
        def value(key: str) -> str:
            return self.query_one(f"#fb-{key}", Input).value
        return ExpectedPattern(category=value("category").strip(),
                               fields=parse_fields(value("fields")),
                               segment=parse_segment_pairs(value("segment")),
                               reason=value("reason"), by=value("by"))

    @on(Button.Pressed, "#fb-save")
    @on(Input.Submitted)
    def save(self) -> None:
        """Validate on the UI thread (cheap), write in a worker."""
        try:
            pattern = self.pattern()
        except ValueError as exc:
            self.query_one("#feedback-error", Static).update(f"! {exc}")
            return
        problems = pattern.problems()
        if problems:
            self.query_one("#feedback-error", Static).update("! " + "; ".join(problems))
            return
        self._write(pattern)

    @work(thread=True, exclusive=True, group="feedback", exit_on_error=False)
    def _write(self, pattern: ExpectedPattern) -> None:
        try:
            rule = append_expected(self.app.config.run_dir, pattern)  # type: ignore[attr-defined]
        except (OSError, ValueError) as exc:
            self.app.call_from_thread(self.query_one("#feedback-error", Static).update, f"! {exc}")
            return
        self.app.call_from_thread(self._written, rule)

    def _written(self, rule: dict[str, Any]) -> None:
        self.app.notify(f"rule {rule['name']} appended to diff_rules.toml",
                        title="marked expected")
        self.dismiss(rule)

    @on(Button.Pressed, "#fb-cancel")
    def action_cancel(self) -> None:
        """Close without writing."""
        self.dismiss(None)


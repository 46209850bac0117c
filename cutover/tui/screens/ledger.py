"""Ledger: both books per account class side by side, reconciliation breaks, the audit chain.

Balances come first; verifying the chain reads every entry, so it runs in a second worker and
its line says "verifying…" until it is done.
"""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static
from textual.worker import get_current_worker

from cutover.tui import format as fmt
from cutover.tui.screens.base import RunScreen
from cutover.tui.views.ledger import LedgerView, default_ledger_url, read_ledger
from cutover.tui.widgets.tables import fill


class LedgerScreen(RunScreen):
    """The shadow ledger, read-only."""

    TITLE = "Ledger"
    #: True while the audit chain is being verified in the background.
    verifying = False

    @property
    def busy(self) -> bool:
        """True until the balances and the verify result are both on screen."""
        return not self.loaded or self.verifying

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        with VerticalScroll(id="ledger"):
            yield Static("ledger: reading…", markup=False, id="ledger-line")
            yield Static("audit chain: waiting for the balances…", markup=False, id="verify-line")
            yield DataTable(id="balances", cursor_type="row", zebra_stripes=True)
            yield Static("", markup=False, id="reconcile-line")
            yield DataTable(id="breaks", cursor_type="none")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#balances", DataTable).add_columns(
            "account class", "cur", "legacy book", "candidate book", "cand - legacy")
        self.query_one("#breaks", DataTable).add_columns(
            "account", "cur", "legacy file", "mirror", "difference")

    def url(self) -> str | None:
        """--ledger, else RUN_DIR/ledger.db when it exists."""
        return self.tui.config.ledger_url or default_ledger_url(self.tui.config.run_dir)

    def fetch(self) -> LedgerView:
        return read_ledger(self.url(), self.tui.config.run_dir, with_verify=False)

    def show(self, view: LedgerView) -> None:
        line = f"ledger: {view.url}" if view.url else "ledger: none"
        if view.error:
            line += f"\n! {view.error}"
        self.query_one("#ledger-line", Static).update(line)
        fill(self.query_one("#balances", DataTable), [
            (r["account_class"], r["currency"], fmt.money(r["legacy_minor"], r["currency"]),
             fmt.money(r["candidate_minor"], r["currency"]),
             fmt.money(r["delta_minor"], r["currency"])) for r in view.balances])
        self._show_reconcile(view.reconcile)
        if view.error is None and view.url:
            self.query_one("#verify-line", Static).update("audit chain: verifying…")
            self.verifying = True
            self._verify_worker()
        else:
            self.query_one("#verify-line", Static).update("audit chain: no ledger to verify")

    def _show_reconcile(self, reconcile: dict[str, Any] | None) -> None:
        table = self.query_one("#breaks", DataTable)
        line = self.query_one("#reconcile-line", Static)
        if reconcile is None:
            fill(table, [])
            line.update("reconciliation: no result saved; run `cutover shadow reconcile RUN_DIR"
                        " --legacy-balances FILE --save`")
            return
        breaks = reconcile.get("breaks") or []
        line.update(f"reconciliation: {len(breaks)} breaks over"
                    f" {reconcile.get('accounts_compared', '?')} accounts (reconcile.json)")
        fill(table, [(b.get("account"), b.get("currency"),
                      fmt.money(b.get("legacy_minor"), b.get("currency")),
                      fmt.money(b.get("mirror_minor"), b.get("currency")),
                      fmt.money(b.get("difference_minor"), b.get("currency"))) for b in breaks])

    @work(thread=True, exclusive=True, group="ledger-verify", exit_on_error=False)
    def _verify_worker(self) -> None:
        worker = get_current_worker()
        try:
            view = read_ledger(self.url(), self.tui.config.run_dir, with_verify=True)
            text = verify_line(view.verify) if view.error is None else f"! {view.error}"
        except Exception as exc:  # noqa: BLE001 - shown to the operator; the UI must stay up
            text = f"audit chain: cannot verify: {exc}"
        if not worker.is_cancelled:
            self.app.call_from_thread(self._show_verify, text)

    def _show_verify(self, text: str) -> None:
        self.query_one("#verify-line", Static).update(text)
        self.verifying = False


def verify_line(verify: dict[str, Any] | None) -> str:
    """"audit chain: intact, 1,234 entries …" or the first break, in words not colours."""
    if verify is None:
        return "audit chain: not verified"
    if verify["chain_break"]:
        return f"audit chain: BROKEN at {verify['chain_break']}"
    problems = []
    if verify["nonzero_books"]:
        problems.append(f"books not zero: {verify['nonzero_books']}")
    if verify["balance_drift"]:
        problems.append(f"{verify['balance_drift']} balances differ from postings")
    if problems:
        return "audit chain: intact, but " + "; ".join(problems)
    return (f"audit chain: intact, {verify['entries']:,} entries verified; books zero;"
            " balances equal postings")

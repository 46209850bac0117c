"""Detail: one transaction — legacy and candidate outcomes side by side, the deepdiff tree,
reason codes with contributions when the explanation has them, and the features: the request
and, for the reference stack, the model's features with the exact contribution of each."""

from __future__ import annotations

from typing import Any, Final

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import DataTable, Footer, Header, Static, Tree

from cutover.tui import format as fmt
from cutover.tui.screens.base import RunScreen, screen_keys_unlisted
from cutover.tui.screens.feedback import FeedbackScreen
from cutover.tui.views.detail import explain
from cutover.tui.widgets.tables import fill

TREE_NODES_MAX: Final = 500
#: Contributions listed under the reason codes (every feature is in the features table).
TOP_SHOWN: Final = 5


class DetailScreen(RunScreen):
    """Pushed over Diffs for one txn id; Escape goes back."""

    TITLE = "Detail"
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back", id="detail.back"),
        Binding("e", "mark_expected", "Expected", id="detail.mark_expected"),
        *screen_keys_unlisted("detail"),
    ]

    def __init__(self, txn_id: str) -> None:
        super().__init__()
        self.txn_id = txn_id
        self.explanation: dict[str, Any] | None = None

    def compose(self) -> ComposeResult:
        yield Header(show_clock=False)
        yield Static(f"txn {self.txn_id}: reading…", markup=False, id="detail-title")
        with Horizontal(id="detail-body"):
            with Vertical(id="detail-left"):
                yield DataTable(id="sides", cursor_type="row", zebra_stripes=True)
                yield DataTable(id="features", cursor_type="none")
            with Vertical(id="detail-right"):
                yield Tree("deepdiff", id="deepdiff")
                yield Static("", markup=False, id="reasons")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#sides", DataTable).add_columns("field", "legacy", "candidate")
        self.query_one("#features", DataTable).add_columns("feature", "value")

    def fetch(self) -> dict[str, Any] | None:
        # A committed transaction's features cannot change: reloads (follow mode, resume)
        # reuse the recomputed model part instead of reading the look-back again.
        known = (self.explanation or {}).get("model")
        return explain(self.tui.config.run_dir, self.txn_id, known)

    def show(self, data: dict[str, Any] | None) -> None:
        self.explanation = data
        title = self.query_one("#detail-title", Static)
        if data is None:
            title.update(f"txn {self.txn_id}: not in this run")
            return
        title.update(title_line(self.txn_id, data))
        both = set(data.get("legacy") or {}) & set(data.get("candidate") or {})
        sides = []
        for name, legacy, candidate in side_by_side(data):
            # The marker is text, not colour, so it survives NO_COLOR; latency always differs.
            changed = name in both and name != "latency_ms" and legacy != candidate
            sides.append((name + (" *" if changed else ""), legacy, candidate))
        fill(self.query_one("#sides", DataTable), sides)
        fill(self.query_one("#features", DataTable), feature_rows(data))
        self._show_tree(data)
        self.query_one("#reasons", Static).update(reasons_text(data))

    def _show_tree(self, data: dict[str, Any]) -> None:
        tree = self.query_one("#deepdiff", Tree)
        tree.clear()
        changes = data.get("deepdiff") or data.get("diff") or {}
        if not changes:
            tree.root.add_leaf(Text("no difference"))
        budget = [TREE_NODES_MAX]
        _add_nodes(tree.root, changes, budget)
        tree.root.expand_all()

    def action_mark_expected(self) -> None:
        """Open the feedback dialog for this transaction's pattern."""
        row = (self.explanation or {}).get("row")
        if not row:
            self.notify("nothing to mark yet", severity="warning")
            return
        self.app.push_screen(FeedbackScreen.from_row(row))


def title_line(txn_id: str, data: dict[str, Any]) -> str:
    """"txn T1 · approve_to_decline [route] · 12.34 USD · M0001/US/ecom"."""
    row = data.get("row") or {}
    fields = ",".join(row.get("fields") or [])
    segment = "/".join(str(row.get(k) or "-") for k in ("merchant_id", "merchant_country",
                                                         "channel", "mcc"))
    amount = row.get("amount_text") or fmt.money(row.get("amount_minor"), row.get("currency"))
    stake = f" (at stake {row['at_stake_text']})" if row.get("at_stake_text") else ""
    verdict = "expected" if row.get("expected") else f"severity {row.get('severity', '?')}"
    quarantine = f" · quarantined: {row['quarantine_reason']}" if row.get("quarantine_reason") \
        else ""
    return (f"txn {txn_id} · {row.get('category', '?')} [{fields}] · {amount}{stake} · "
            f"{segment} · {verdict}{quarantine}")


def side_by_side(data: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(field, legacy, candidate) for every field either side has, legacy's fields first."""
    legacy = data.get("legacy") or {}
    candidate = data.get("candidate") or {}
    names = list(legacy) + [k for k in candidate if k not in legacy]
    return [(n, _text(legacy.get(n)), _text(candidate.get(n))) for n in names]


def reasons_text(data: dict[str, Any]) -> str:
    """Reason codes (with contributions and their meaning when given), as lines."""
    lines = ["reason codes:"]
    codes = data.get("reason_codes") or []
    for code in codes:
        if isinstance(code, dict):
            contribution = code.get("contribution")
            extra = f" {contribution:+.3f}" if isinstance(contribution, int | float) else ""
            text = code.get("text")
            about = f": {text}" if text and text != code.get("code") else ""
            lines.append(f"  {code.get('code', code)}{extra}{about}")
        else:
            lines.append(f"  {code}")
    if not codes:
        lines.append("  none")
    if not data.get("features"):
        lines.append("features: traffic store not reachable from run.json")
    lines.extend(model_lines(data.get("model")))
    return "\n".join(lines)


def signed_term(value: float) -> str:
    """``+ 5.749`` or ``- 5.749``: a term added to a sum, its sign once."""
    return f"{'-' if value < 0 else '+'} {abs(value):.3f}"


def model_lines(model: dict[str, Any] | None) -> list[str]:
    """The score as bias plus contributions, and the largest pushes up (nothing without a model
    part; one line saying why when it could not be recomputed)."""
    if not model:
        return []
    if not model.get("available"):
        return [f"contributions: not available: {model.get('why')}"]
    check = "reproduced" if model.get("score_reproduced") else "NOT reproduced"
    lines = [f"score {model['score']:.4f} = sigmoid(bias {model['bias']:+.3f}"
             f" {signed_term(model['margin'] - model['bias'])}), {check}",
             f"top contributions (exact, model {model.get('model_version')}):"]
    for f in (model.get("top") or [])[:TOP_SHOWN]:
        lines.append(f"  {f['contribution']:+.3f} {f['name']} = {_text(f['value'])}")
    return lines


def feature_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The request's fields by name, then the model's features, largest contribution first,
    each value with its contribution."""
    rows = [(n, _text(v)) for n, v in sorted((data.get("features") or {}).items())]
    model = data.get("model") or {}
    if model.get("available"):
        rows.append(("— model features —", "value (contribution)"))
        for f in sorted(model.get("features") or [], key=lambda f: -abs(f["contribution"])):
            rows.append((f["name"], f"{_text(f['value'])} ({f['contribution']:+.3f})"))
    return rows


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _add_nodes(node: Any, value: Any, budget: list[int]) -> None:
    """Add ``value`` under ``node`` as a tree, at most TREE_NODES_MAX nodes in all."""
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        node.add_leaf(Text(_text(value)))
        return
    for key, child in items:
        if budget[0] <= 0:
            node.add_leaf(Text("…"))
            return
        budget[0] -= 1
        if isinstance(child, dict | list) and child:
            _add_nodes(node.add(Text(str(key))), child, budget)
        else:
            node.add_leaf(Text(f"{key}: {_text(child)}"))

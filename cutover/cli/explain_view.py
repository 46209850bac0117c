"""The terminal picture of one ``explain`` result: a rich tree of both outcomes, the deepdiff,
the reason codes and the candidate's features. Rendering lives here, beside the CLI, so the
drill-down core stays free of rich."""

from __future__ import annotations

import textwrap
from typing import Any

from rich.table import Table
from rich.tree import Tree

from cutover.shadow.drilldown import OUTCOME_FIELDS

#: Long tree lines are wrapped here: the CLI console soft-wraps, which crops at the edge.
WRAP_CHARS = 72


def render_tree(result: dict[str, Any]) -> Any:
    """A rich Tree of an ``explain`` result for the terminal."""
    verdict = "expected" if result["expected"] else result["severity"]
    tree = Tree(f"[bold]{result['txn_id']}[/]: {result['category']} ({verdict}),"
                f" {result['amount']}, at stake {result['at_stake']}")
    if result["quarantine_reason"]:
        tree.add(f"[red]quarantined:[/] {result['quarantine_reason']}")
    sides = Table("field", "legacy", "candidate", title="outcomes")
    for name in OUTCOME_FIELDS:
        a, b = result["legacy"][name], result["candidate"][name]
        mark = "" if a == b or name == "latency_ms" else "[bold yellow]"
        sides.add_row(f"{mark}{name}", str(a), str(b))
    tree.add(sides)
    changes = tree.add("deepdiff")
    for kind, entries in result["deepdiff"].items():
        branch = changes.add(kind)
        for path, value in (entries.items() if isinstance(entries, dict) else enumerate(entries)):
            branch.add(f"{path}: {value}")
    reasons = tree.add("candidate reason codes")
    for reason in result["reason_codes"]:
        reasons.add(f"{reason['code']}: {reason['text']}")
    detail = tree.add("candidate")
    for key, value in result["candidate_detail"].items():
        detail.add(f"{key}: {value}")
    tree.add(_model_branch(result.get("candidate_model") or {}))
    if result["request"]:
        request = tree.add("request")
        for key, value in result["request"].items():
            request.add(f"{key}: {value}")
    return tree


def _term(value: float) -> str:
    return f"{'-' if value < 0 else '+'} {abs(value):.4f}"


def _model_branch(model: dict[str, Any]) -> Any:
    """The candidate's recomputed features and contributions, largest push first."""
    branch = Tree("candidate features and contributions")
    if not model.get("available"):
        for line in textwrap.wrap(f"not available: {model.get('why')}", WRAP_CHARS):
            branch.add(line)
        return branch
    same = "yes" if model["score_reproduced"] else "[bold red]NO[/]"
    look = model["lookback"]
    for line in (f"model {model['model_version']}, {model['method']}",
                 f"score {model['score']:.6f} = sigmoid(bias {model['bias']:+.4f}"
                 f" {_term(model['margin'] - model['bias'])} (contributions))",
                 f"recorded score {model['score_recorded']}: reproduced: {same}",
                 f"look-back: {look['rows']} earlier rows of its card, customer, device,"
                 " merchant",
                 f"merchant labels known by then: {look['labels']}; {model['seconds']:.3f} s"):
        branch.add(line)
    table = Table("feature", "value", "contribution", "meaning", title="features")
    for f in sorted(model["features"], key=lambda f: -abs(f["contribution"])):
        table.add_row(f["name"], f"{f['value']:.6g}", f"{f['contribution']:+.4f}", f["text"])
    branch.add(table)
    return branch

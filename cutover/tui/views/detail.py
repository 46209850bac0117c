"""One transaction, explained: legacy and candidate side by side, their deepdiff, reason codes.

The replay area owns the explanation (``cutover.shadow.drilldown.explain``); this module uses
it when it is installed and otherwise builds the same picture from the diff row and the
decision row, so the Detail screen works on any run directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from cutover.errors import InputError, StoreError
from cutover.shadow.drilldown import explain as drilldown
from cutover.tui.views.diffs import find_row

#: The outcome fields compared side by side, as (label, diff-row suffix).
OUTCOME_FIELDS: Final = (("decision", "decision"), ("reason", "reason"), ("route", "route"),
                         ("fee_minor", "fee_minor"), ("latency_ms", "latency_ms"))
#: The outcome fields the diff engine compares (cutover.shadow.diff_rules.COMPARED_FIELDS);
#: latency always differs between a SOAP core and an in-process model, so it is shown, not diffed.
COMPARED: Final = ("decision", "reason", "route", "fee_minor")
#: Decision-row fields shown with the candidate's outcome.
DECISION_FIELDS: Final = ("score", "p_success", "retry_plan", "model_version", "latency_us")


def explain(run_dir: Path, txn_id: str,
            model: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """The explanation of ``txn_id`` (None if the run has no such transaction).

    Both sources are brought to one shape: ``row`` (category, fields, severity, segment,
    amount), ``legacy`` and ``candidate`` outcomes, ``deepdiff``, ``reason_codes``,
    ``features`` (the request the candidate saw, when the traffic store is reachable) and
    ``model`` (the candidate's recomputed features and exact contributions, or why there are
    none; None from the fallback). Recomputing ``model`` is the slow part (a look-back read
    and TreeSHAP): pass an earlier answer's ``model`` to reuse it.
    """
    try:
        pass
    except ImportError:
        return explain_from_rows(run_dir, txn_id)
    try:
        found = drilldown(Path(run_dir), txn_id, model)
    except StoreError:
        raise
    except InputError:
        return None
    return from_drilldown(found)


def from_drilldown(found: dict[str, Any]) -> dict[str, Any]:
    """The replay area's drill-down result in the Detail screen's shape."""
    segment = found.get("segment") or {}
    row = {"txn_id": found["txn_id"], "category": found.get("category"),
           "fields": list(found.get("fields") or []), "severity": found.get("severity"),
           "expected": found.get("expected"), "amount_text": found.get("amount"),
           "at_stake_text": found.get("at_stake"),
           "quarantine_reason": found.get("quarantine_reason"), **segment}
    candidate = {**(found.get("candidate") or {}), **(found.get("candidate_detail") or {})}
    return {"source": "drilldown", "txn_id": found["txn_id"], "row": _plain(row),
            "legacy": _plain(found.get("legacy") or {}), "candidate": _plain(candidate),
            "deepdiff": _plain(found.get("deepdiff") or {}),
            "reason_codes": _plain(found.get("reason_codes") or []),
            "features": _plain(found.get("request")) if found.get("request") else None,
            "model": _plain(found.get("candidate_model")) if found.get("candidate_model")
            else None}


def explain_from_rows(run_dir: Path, txn_id: str) -> dict[str, Any] | None:
    """The fallback: both outcomes from the diff row, the candidate's extras from decisions."""
    from deepdiff import DeepDiff

    row = find_row(run_dir, txn_id)
    if row is None:
        return None
    decision = find_row(run_dir, txn_id, "decisions") or {}
    legacy = {label: row.get(f"legacy_{suffix}") for label, suffix in OUTCOME_FIELDS}
    candidate = {label: row.get(f"candidate_{suffix}") for label, suffix in OUTCOME_FIELDS}
    for name in DECISION_FIELDS:
        if name in decision:
            candidate[name] = decision[name]
    tree = DeepDiff({k: legacy[k] for k in COMPARED}, {k: candidate[k] for k in COMPARED},
                    verbose_level=2).to_dict()
    return {"source": "rows", "txn_id": txn_id, "row": _plain(row), "legacy": _plain(legacy),
            "candidate": _plain(candidate), "deepdiff": _plain(tree),
            "reason_codes": list(decision.get("reason_codes") or []),
            "features": None, "model": None}


def _plain(value: Any) -> Any:
    """JSON-like data (timestamps and other objects as text) for display."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)

"""Drill-down: one transaction of a replay, legacy and candidate side by side, and why.

This is the one place where per-row Python is right: a person asks about one transaction.
The diff row comes from RUN_DIR/diffs, the candidate's reason codes and score from the
decisions part of the same batch, the request from the traffic store (a card token and BIN
only: the store never holds card numbers). deepdiff compares the two outcomes as a tree.
The candidate's features and the exact contribution of each to its score are recomputed for
this one transaction (``cutover.shadow.attribution``): the decision store keeps codes only.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from cutover.domain import TRAFFIC, MoneyError, format_money
from cutover.errors import ConfigError, InputError, StoreError
from cutover.shadow.attribution import candidate_view
from cutover.shadow.diff import at_stake_minor
from cutover.stack.reasons import explain as reason_texts

OUTCOME_FIELDS: Final = ("decision", "reason", "route", "fee_minor", "latency_ms")
REQUEST_FIELDS: Final = ("ts", "merchant_id", "mcc", "merchant_country", "channel",
                         "customer_id", "card_token", "card_bin", "card_country", "amount_minor",
                         "currency", "device_hash", "ip_hash", "is_fraud", "chargeback",
                         "label_ts")


def _find(folder: Path, txn_id: str) -> tuple[Path, pa.Table] | None:
    for part in sorted(folder.glob("part-*.parquet")):
        table = pq.read_table(part, filters=[("txn_id", "=", txn_id)])
        if table.num_rows:
            return part, table
    return None


def _side(row: dict[str, Any], side: str) -> dict[str, Any]:
    return {f: row.get(f"{side}_{f}") for f in OUTCOME_FIELDS}


def _reason_codes(codes: list[str], model: dict[str, Any]) -> list[dict[str, Any]]:
    """Each code with its plain text (cutover/fixtures/reasons.toml) and, for a model code, its exact
    contribution when the candidate's view was recomputed."""
    try:
        texts = reason_texts(codes)
    except ConfigError:
        texts = list(codes)
    # The recomputed features carry the sentence with the value and typical range: a recorded
    # model code shows that text, so the words are those of the value that was judged.
    by_name = {f["name"]: f for f in model.get("features", [])}
    out: list[dict[str, Any]] = []
    for code, text in zip(codes, texts, strict=True):
        entry: dict[str, Any] = {"code": code, "text": text}
        prefix, _, name = code.partition(":")
        feature = by_name.get(name) if prefix in ("model", "pushed") else None
        if feature is not None:
            entry["contribution"] = feature["contribution"]
            entry["value"] = feature["value"]
            if feature["code"] == code:
                entry["text"] = feature["text"]
        out.append(entry)
    return out


def _request(run_dir: Path, txn_id: str, ts: datetime | None) -> dict[str, Any] | None:
    """The traffic row, looked up in the day folder of its timestamp."""
    try:
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    files = [Path(i["path"]) for i in run.get("inputs", []) if Path(i["path"]).is_file()]
    if ts is not None:
        day = f"day={ts.strftime('%Y-%m-%d')}"
        files = [f for f in files if f.parent.name == day] or files
    if not files:
        return None
    dataset = ds.dataset([str(f) for f in files], schema=TRAFFIC, format="parquet")
    table = dataset.to_table(columns=list(REQUEST_FIELDS), filter=ds.field("txn_id") == txn_id)
    return table.to_pylist()[0] if table.num_rows else None


def _deepdiff(legacy: dict[str, Any], candidate: dict[str, Any]) -> dict[str, Any]:
    from deepdiff import DeepDiff
    # Latency differs by nature; leaving it out keeps the tree about the outcome.
    diff = DeepDiff(legacy, candidate, exclude_paths=["root['latency_ms']"], verbose_level=2)
    return json.loads(diff.to_json())


def explain(run_dir: Path, txn_id: str, model: dict[str, Any] | None = None) -> dict[str, Any]:
    """Everything known about ``txn_id`` in the run, as plain JSON-ready data.

    ``model`` is an earlier answer's ``candidate_model`` for the same transaction: a screen
    that reloads a committed transaction need not recompute what cannot have changed.
    """
    run_dir = Path(run_dir)
    if not (run_dir / "diffs").is_dir():
        raise StoreError(f"{run_dir} has no diffs/: not a replay run directory")
    found = _find(run_dir / "diffs", txn_id)
    if found is None:
        raise InputError(f"txn_id {txn_id!r} is not in {run_dir}/diffs")
    part, diff = found
    row = diff.to_pylist()[0]
    decided = _find_in(run_dir / "decisions" / part.name, txn_id)
    legacy, candidate = _side(row, "legacy"), _side(row, "candidate")
    codes = (decided or {}).get("reason_codes") or []
    model = model if model is not None else candidate_view(run_dir, row, decided)
    stake = int(at_stake_minor(diff)[0])
    return {
        "txn_id": txn_id, "part": part.name, "category": row["category"],
        "expected": row["expected"], "severity": row["severity"], "fields": row["fields"],
        "quarantine_reason": row["quarantine_reason"],
        "amount": _money(row["amount_minor"], row["currency"]),
        "at_stake": _money(stake, row["currency"]), "at_stake_minor": stake,
        "segment": {k: row[k] for k in ("merchant_id", "merchant_country", "channel", "mcc")},
        "legacy": legacy, "candidate": candidate, "deepdiff": _deepdiff(legacy, candidate),
        "reason_codes": _reason_codes(list(codes), model),
        "candidate_detail": {k: (decided or {}).get(k) for k in
                             ("score", "p_success", "retry_plan", "model_version", "latency_us")},
        "candidate_model": model,
        "request": _request(run_dir, txn_id, row.get("ts")),
    }


def _find_in(path: Path, txn_id: str) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    table = pq.read_table(path, filters=[("txn_id", "=", txn_id)])
    return table.to_pylist()[0] if table.num_rows else None


def _money(amount_minor: int | None, currency: str | None) -> str | None:
    if amount_minor is None or currency is None:
        return None
    try:
        return format_money(int(amount_minor), currency)
    except MoneyError:
        return f"{amount_minor} minor units of {currency}"


def txn_ids_of(run_dir: Path, category: str, limit: int = 10) -> list[str]:
    """A few txn_ids of a category (for docs, tests and the TUI's first screen)."""
    out: list[str] = []
    for part in sorted((Path(run_dir) / "diffs").glob("part-*.parquet")):
        table = pq.read_table(part, columns=["txn_id", "category"])
        out += table.filter(pc.equal(table["category"], category))["txn_id"].to_pylist()
        if len(out) >= limit:
            break
    return out[:limit]

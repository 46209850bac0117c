"""Tell a true duplicate from a conflict: the same ``txn_id`` with different content.

``txn_id`` is the idempotency key, so a record whose id is already known is not imported
again. That is right when it is the same transaction seen twice (a cassette of traffic the
authorisation log already holds); it is a silent change when the second version says
something else (another amount, another card). Such a record is quarantined as a conflict
naming both versions, and counted there, not as a duplicate.

What is compared is the transaction itself (``CONFLICT_FIELDS``: time to the second, amount,
currency, merchant, card, customer, channel), not the recorded legacy outcome or metadata a
source may not carry (a cassette has no card country and no latency).
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.errors import StoreError
from cutover.store.traffic import open_store

CONFLICT_FIELDS: Final = ("ts", "amount_minor", "currency", "merchant_id", "mcc",
                          "merchant_country", "card_token", "customer_id", "channel")
#: Stored versions looked up per query, so a file of many conflicts reads the store in pages.
LOOKUP_IDS_MAX: Final = 50_000


def content_keys(table: pa.Table) -> np.ndarray:
    """Pure: one text per row that is equal exactly when the compared fields are equal."""
    parts = []
    for name in CONFLICT_FIELDS:
        column = table[name]
        if name == "ts":
            column = pc.cast(pc.cast(column, pa.timestamp("us", tz="UTC")),
                             pa.timestamp("s", tz="UTC"), safe=False)
        parts.append(pc.fill_null(pc.cast(column, pa.string()), "\x00"))
    joined = pc.binary_join_element_wise(*parts, "\x1f")
    return np.asarray(joined.to_pylist(), dtype=object)


def describe(table: pa.Table, index: int) -> dict[str, str]:
    """The compared fields of one row, as text, for the quarantine record."""
    return {name: str(table[name][index].as_py()) for name in CONFLICT_FIELDS}


def stored_versions(roots: list[Path], ids: list[str]) -> pa.Table:
    """The compared fields of the rows with ``ids`` in the stores under ``roots``."""
    pieces = []
    for root in roots:
        try:
            dataset = open_store(root)
        except StoreError:
            continue
        for start in range(0, len(ids), LOOKUP_IDS_MAX):
            wanted = pa.array(ids[start:start + LOOKUP_IDS_MAX], pa.string())
            pieces.append(dataset.to_table(columns=["txn_id", *CONFLICT_FIELDS],
                                           filter=pc.field("txn_id").isin(wanted)))
    if not pieces:
        return pa.table({"txn_id": pa.array([], pa.string())})
    return pa.concat_tables(pieces, promote_options="permissive")


def find_conflicts(table: pa.Table, ok: np.ndarray, dup: np.ndarray, roots: list[Path]
                   ) -> tuple[np.ndarray, dict[int, dict[str, str]]]:
    """(conflict mask, the other version per conflicting row) among the rows ``dup`` marks.

    A duplicate is compared with the first good row of the same id earlier in ``table``, else
    with the version already stored under ``roots``. Only rows sharing an id with a duplicate
    are looked at, so a clean import costs one vectorised membership test.
    """
    conflict = np.zeros(table.num_rows, dtype=bool)
    other: dict[int, dict[str, str]] = {}
    if not dup.any():
        return conflict, other
    dup_ids = pc.unique(table["txn_id"].filter(pa.array(dup)))
    involved = np.flatnonzero(ok & pc.fill_null(pc.is_in(table["txn_id"], value_set=dup_ids),
                                                False).to_numpy(zero_copy_only=False))
    sub = table.take(pa.array(involved))
    keys, ids = content_keys(sub), sub["txn_id"].to_pylist()
    first: dict[str, int] = {}
    for k, txn in enumerate(ids):
        first.setdefault(txn, k)
    from_store = sorted({txn for k, txn in enumerate(ids) if first[txn] == k})
    stored = stored_versions(roots, from_store)
    stored_keys = content_keys(stored) if stored.num_rows else np.zeros(0, dtype=object)
    stored_at: dict[str, int] = {}
    for j, txn in enumerate(stored["txn_id"].to_pylist()):
        stored_at.setdefault(txn, j)
    for k, txn in enumerate(ids):
        j = first[txn]
        if j != k and keys[k] != keys[j]:
            conflict[involved[k]], other[int(involved[k])] = True, describe(sub, j)
        elif j == k and txn in stored_at and keys[k] != stored_keys[stored_at[txn]]:
            conflict[involved[k]] = True
            other[int(involved[k])] = describe(stored, stored_at[txn])
    return conflict, other

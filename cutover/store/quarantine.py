"""Which traffic rows cannot be replayed, and why: one reason per bad row, never a drop.

A row is quarantined when neither side could be asked about it meaningfully or the ledger
could not book it: a missing key field, a non-positive amount, an unknown currency or channel,
an id with control characters (the ledger's audit chain uses them as separators) or a
``txn_id`` repeated within the batch. The first failing check gives the reason; the checks are
vectorised masks, so a clean batch costs a few compute kernels.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cutover.domain import CHANNELS, CURRENCY_EXPONENTS
from cutover.values import ts_out_of_range, ts_range_text

#: Text fields every replayable row must carry (non-null, non-empty).
REQUIRED_TEXT: Final = ("txn_id", "merchant_id", "mcc", "customer_id", "card_token", "card_bin",
                        "card_country", "currency", "merchant_country", "channel")
#: Ids that end up in ledger account names or the audit chain.
ID_FIELDS: Final = ("txn_id", "merchant_id", "customer_id", "card_token")
_CONTROL_CHARS: Final = "[\\x00-\\x1f\\x7f]"


def _np(mask: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(pc.fill_null(mask, True).to_numpy(zero_copy_only=False), dtype=bool)


def _duplicates(txn_id: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Second and later occurrences of a txn_id within the batch."""
    if len(pc.unique(txn_id)) == len(txn_id):
        return np.zeros(len(txn_id), bool)
    encoded = pc.dictionary_encode(pc.fill_null(txn_id, ""))
    if isinstance(encoded, pa.ChunkedArray):
        encoded = encoded.combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    _, first = np.unique(codes, return_index=True)
    dup = np.ones(len(codes), bool)
    dup[first] = False
    return dup


def _missing_text(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Null or empty strings, read from the validity bitmap and the offsets (no kernels)."""
    parts = []
    for chunk in (values.chunks if isinstance(values, pa.ChunkedArray) else [values]):
        chunk = chunk.cast(pa.string())
        offsets = np.frombuffer(chunk.buffers()[1], dtype=np.int32)[
            chunk.offset: chunk.offset + len(chunk) + 1]
        empty = np.diff(offsets) == 0
        if chunk.null_count:
            empty |= ~np.asarray(chunk.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
        parts.append(empty)
    return np.concatenate(parts) if parts else np.zeros(0, bool)


def _control_chars(values: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Rows holding an ASCII control character; a scan of the raw bytes first, since a clean
    column (the usual case) then costs one numpy pass instead of a regex per row."""
    chunks = values.chunks if isinstance(values, pa.ChunkedArray) else [values]
    clean = True
    for chunk in chunks:
        data = chunk.cast(pa.string()).buffers()[2]
        if data is None:
            continue
        raw = np.frombuffer(data, dtype=np.uint8)
        if ((raw < 0x20) | (raw == 0x7F)).any():
            clean = False
            break
    if clean:
        return np.zeros(len(values), bool)
    bad = pc.match_substring_regex(values, _CONTROL_CHARS)
    return _np(pc.fill_null(bad, False))


def _checks(table: pa.Table) -> list[tuple[str, np.ndarray]]:
    """(reason, failing-rows mask) in the order they are reported."""
    checks = []
    for name in REQUIRED_TEXT:
        checks.append((f"missing {name}", _missing_text(table[name])))
    checks.append(("missing ts", _np(pc.is_null(table["ts"]))))
    checks.append((f"ts outside the plausible range {ts_range_text()}",
                   ts_out_of_range(table["ts"])))
    amount = table["amount_minor"]
    checks.append(("amount_minor is missing or not positive", _np(pc.less_equal(amount, 0))))
    currencies = pa.array(sorted(CURRENCY_EXPONENTS), pa.string())
    checks.append(("currency is not an ISO 4217 code cutover knows",
                   ~_np(pc.is_in(table["currency"], value_set=currencies))))
    checks.append((f"channel is not one of {'|'.join(CHANNELS)}",
                   ~_np(pc.is_in(table["channel"], value_set=pa.array(list(CHANNELS))))))
    for name in ID_FIELDS:
        checks.append((f"{name} holds a control character", _control_chars(table[name])))
    checks.append(("txn_id repeated within the batch", _duplicates(table["txn_id"])))
    return checks


def quarantine_reasons(table: pa.Table) -> pa.Array:
    """One reason per row (null for a good row); ``table`` has the TRAFFIC columns."""
    n = table.num_rows
    if n == 0:
        return pa.nulls(0, pa.string())
    checks = _checks(table)
    masks = np.vstack([mask for _, mask in checks])
    bad = masks.any(axis=0)
    if not bad.any():
        return pa.nulls(n, pa.string())
    # The first failing check gives the reason (argmax finds the first True per row).
    names = pa.array([reason for reason, _ in checks], pa.string())
    first = pa.array(masks.argmax(axis=0), mask=~bad)
    return names.take(first)

"""The ledger's audit hash chain: each entry's hash covers its content and its predecessor.

``hash(n) = sha256(content(n) + US + hex hash(n-1))`` in the total order ``seq``, starting from
``GENESIS_HASH``; with ``CUTOVER_LEDGER_KEY`` set, HMAC-SHA256 under that key instead, so
someone who can write the database but does not hold the key cannot rebuild a valid chain
with cutover's own code after changing it. An exported anchor (``anchor.py``) pins the head
outside the database for the same reason.

Changing, inserting or deleting any entry or posting behind the ledger's back changes a hash
that every later entry depends on, so ``verify`` finds the first entry that no longer
matches. The content is canonical text built with pyarrow for a whole batch at once; only the
link step is sequential by nature and stays a tight loop.

Canonical content of one entry (fields joined by US = \\x1f, postings by RS = \\x1e):
``seq US book US txn_id US kind US ts_us US currency US leg RS leg``, a leg being
``account GS class GS account currency GS amount`` (GS = \\x1d). The account's metadata is
covered, so moving an account to another class (from one measure to another) breaks the
chain. Ids with control characters are refused upstream, so the text is unambiguous.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from typing import Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

GENESIS_HASH: Final = "0" * 64
#: The key of a keyed chain (HMAC-SHA256); unset means plain SHA-256.
LEDGER_KEY_ENV: Final = "CUTOVER_LEDGER_KEY"
_US: Final = "\x1f"
_RS: Final = "\x1e"
_GS: Final = "\x1d"


@dataclass(frozen=True)
class EntryColumns:
    """Everything that is hashed, as columns; postings are two per entry in entry order."""

    seq: np.ndarray          # int64
    book: pa.Array           # string (book name)
    txn_id: pa.Array         # string
    kind: pa.Array           # string
    ts_us: pa.Array          # int64, nullable
    currency: pa.Array       # string
    account: pa.Array        # string, one per posting
    amount_minor: np.ndarray  # int64, one per posting
    posting_offsets: np.ndarray  # int64, entries + 1
    account_class: pa.Array  # string, one per posting
    account_currency: pa.Array  # string, one per posting


def ledger_key() -> bytes | None:
    """The chain key from ``CUTOVER_LEDGER_KEY``, or None for an unkeyed chain."""
    key = os.environ.get(LEDGER_KEY_ENV, "")
    return key.encode() if key else None


def _digest(key: bytes | None):
    """The link function: ``f(content + prev_hash bytes) -> hex``."""
    if key is None:
        return lambda data: hashlib.sha256(data).hexdigest()
    return lambda data: hmac.new(key, data, hashlib.sha256).hexdigest()


def contents(cols: EntryColumns) -> list[bytes]:
    """The canonical bytes of each entry, computed column-wise."""
    if len(cols.seq) == 0:
        return []
    legs = pc.binary_join_element_wise(cols.account, cols.account_class, cols.account_currency,
                                       pc.cast(pa.array(cols.amount_minor), pa.string()), _GS)
    per_entry = pa.ListArray.from_arrays(pa.array(cols.posting_offsets, pa.int32()), legs)
    text = pc.binary_join_element_wise(
        pc.cast(pa.array(cols.seq), pa.string()), cols.book, cols.txn_id, cols.kind,
        pc.cast(cols.ts_us, pa.string()), cols.currency, pc.binary_join(per_entry, _RS), _US,
        null_handling="replace", null_replacement="")
    # Each content ends with the separator so the link step only appends the previous hash.
    text = pc.binary_join_element_wise(text, pa.scalar(""), _US)
    return pc.cast(text, pa.binary()).to_pylist()


def link(entry_contents: list[bytes], prev_hash: str, key: bytes | None = None
         ) -> tuple[list[str], list[str]]:
    """Chain the entries after ``prev_hash`` (keyed with ``key``); return (prev_hash per
    entry, hash per entry)."""
    hashes: list[str] = []
    if not entry_contents:
        return [], []
    append, digest, last = hashes.append, _digest(key), prev_hash
    for content in entry_contents:
        last = digest(content + last.encode())
        append(last)
    return [prev_hash, *hashes[:-1]], hashes


@dataclass(frozen=True)
class Mismatch:
    """The first entry at which the stored chain and the recomputed one part ways."""

    index: int
    reason: str


def first_mismatch(entry_contents: list[bytes], stored_prev: list[str], stored_hash: list[str],
                   prev_hash: str, key: bytes | None = None) -> Mismatch | None:
    """Recompute the chain after ``prev_hash`` and return the first entry that disagrees."""
    digest = _digest(key)
    for i, content in enumerate(entry_contents):
        if stored_prev[i] != prev_hash:
            return Mismatch(i, "its prev_hash is not the previous entry's hash"
                               " (an entry before it was removed, inserted or rehashed)")
        prev_hash = digest(content + prev_hash.encode())
        if stored_hash[i] != prev_hash:
            return Mismatch(i, "its stored hash does not match its content (the entry, one of"
                               " its postings or accounts was changed, or the ledger was"
                               f" written with another {LEDGER_KEY_ENV})")
    return None

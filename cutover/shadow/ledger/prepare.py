"""Turn one diffs part into chained, driver-ready entries, without touching the database.

Preparing is the CPU half of an apply (posting rules, balance check, canonical content, hash
chain, conversion to the driver's row format); writing is the I/O half. Keeping them apart lets
``apply`` prepare the next part on a worker thread while the database writes the current one,
and keeps this half pure enough to test on plain data. A part is prepared against an assumed
chain head; the writer checks that assumption under its lock and re-prepares if another
writer moved the head meanwhile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from cutover.errors import InvariantBroken, StoreError
from cutover.pan import CANDIDATE_PATTERN, has_pan, mask_pans
from cutover.shadow.ledger import chain
from cutover.shadow.ledger.posting_rules import COLUMNS, Plan, check_balanced, plan_postings
from cutover.shadow.ledger.schema import BOOK_NAMES

Head = tuple[int, str]
Encoder = Callable[[pa.Table], Any]
PlanFilter = Callable[[Plan], Plan]

_BOOK_NAME_BY_ID: Final = np.array([BOOK_NAMES.get(i, "") for i in range(max(BOOK_NAMES) + 1)],
                                   dtype=object)


@dataclass(frozen=True)
class PreparedChunk:
    """One batch of a part: its plan, its chained entries and their encoded form."""

    rows_in: int
    plan: Plan
    entries: pa.Table
    encoded_entries: Any


@dataclass
class PreparedPart:
    """A whole part chained after ``head_before``; ``head_after`` is its last entry."""

    path: Path
    head_before: Head
    head_after: Head
    chunks: list[PreparedChunk] = field(default_factory=list)

    @property
    def rows_in(self) -> int:
        """Diff rows read."""
        return sum(c.rows_in for c in self.chunks)

    @property
    def entries(self) -> int:
        """Entries to write."""
        return sum(c.plan.entries for c in self.chunks)

    @property
    def postings(self) -> int:
        """Postings to write."""
        return sum(c.plan.postings for c in self.chunks)


def read_batches(path: Path, batch_rows: int) -> Iterator[pa.Table]:
    """The DIFF columns the policy needs, ``batch_rows`` rows at a time."""
    try:
        reader = pq.ParquetFile(path)
        missing = [c for c in COLUMNS if c not in reader.schema_arrow.names]
        if missing:
            raise StoreError(f"{path}: not a DIFF part, missing columns {missing}")
        for batch in reader.iter_batches(batch_size=batch_rows, columns=COLUMNS):
            yield pa.Table.from_batches([batch])
    except (OSError, pa.ArrowInvalid) as exc:
        raise StoreError(f"{path}: cannot read the diffs part: {exc}") from exc


def prepare_part(path: Path, batch_rows: int, head: Head, encode: Encoder,
                 keep: PlanFilter | None = None) -> PreparedPart:
    """Plan, check and chain every batch of ``path`` after ``head``.

    ``keep`` filters each plan before chaining (used to skip entries that already exist).
    """
    part = PreparedPart(path=path, head_before=head, head_after=head)
    for table in read_batches(path, batch_rows):
        plan = plan_postings(table)
        check_balanced(plan)
        refuse_clear_pans(plan, path)
        if keep is not None:
            plan = keep(plan)
        entries = chain_entries(plan, part.head_after)
        if plan.entries:
            part.head_after = (int(entries["seq"][-1].as_py()), entries["hash"][-1].as_py())
        part.chunks.append(PreparedChunk(table.num_rows, plan, entries, encode(entries)))
    return part


def refuse_clear_pans(plan: Plan, path: Path) -> None:
    """Stop before a card number in clear becomes part of the audit chain (it could never be
    removed again without breaking the chain): txn ids and account names are scanned."""
    for name, values in (("txn_id", plan.txn_id), ("account", plan.account)):
        hits = pc.fill_null(pc.match_substring_regex(values, CANDIDATE_PATTERN), False)
        for i in np.flatnonzero(hits.to_numpy(zero_copy_only=False)):
            text = str(values[int(i)].as_py())
            if has_pan(text):
                raise InvariantBroken(f"{path}: a card number in clear in {name}"
                                      f" {mask_pans(text)!r}; the ledger refuses to chain it")


def chain_entries(plan: Plan, head: Head) -> pa.Table:
    """The plan's entries numbered and hashed after ``head`` (ledger_entries columns)."""
    seq = np.arange(head[0] + 1, head[0] + 1 + plan.entries, dtype=np.int64)
    books = pa.array(_BOOK_NAME_BY_ID[plan.book_id], pa.string())
    legs_currency = plan.currency.take(pa.array(np.repeat(np.arange(plan.entries), 2)))
    cols = chain.EntryColumns(seq, books, plan.txn_id, plan.kind, plan.ts_us, plan.currency,
                              plan.account, plan.amount_minor,
                              np.arange(0, 2 * plan.entries + 1, 2, dtype=np.int64),
                              plan.account_class, legs_currency)
    prevs, hashes = chain.link(chain.contents(cols), head[1], chain.ledger_key())
    return pa.table({"seq": seq, "book_id": plan.book_id, "txn_id": plan.txn_id,
                     "kind": plan.kind, "ts_us": plan.ts_us, "currency": plan.currency,
                     "prev_hash": pa.array(prevs, pa.string()),
                     "hash": pa.array(hashes, pa.string())})


def posting_rows(plan: Plan, entries: pa.Table, account_ids: np.ndarray) -> tuple[pa.Table,
                                                                                     pa.Table]:
    """(ledger_postings rows, balance deltas per book and account) for a chained plan."""
    leg_entry = np.repeat(np.arange(plan.entries), 2)
    seq = entries["seq"].to_numpy()
    postings = pa.table({"entry_seq": seq[leg_entry],
                         "line": np.tile(np.array([1, 2], np.int64), plan.entries),
                         "account_id": account_ids, "amount_minor": plan.amount_minor})
    deltas = pa.table({"book_id": plan.book_id[leg_entry], "account_id": account_ids,
                       "amount_minor": plan.amount_minor})
    deltas = deltas.group_by(["book_id", "account_id"]).aggregate([("amount_minor", "sum")])
    deltas = pa.table({"book_id": deltas["book_id"], "account_id": deltas["account_id"],
                       "amount_minor": deltas["amount_minor_sum"]})
    return postings, deltas

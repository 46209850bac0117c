"""Corrections without rewriting history: a reversing entry posts the negation of an entry.

The ledger has no update or delete path for entries or postings. To undo an entry, post its
mirror image as a new entry of kind ``<kind>.reversal`` at the end of the chain; the unique key
(book, txn_id, kind) lets each entry be reversed once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Final

import numpy as np
import pyarrow as pa

from cutover.errors import LedgerError
from cutover.shadow.ledger.posting_rules import Plan, check_balanced
from cutover.shadow.ledger.prepare import chain_entries, posting_rows
from cutover.shadow.ledger.schema import BOOK_IDS
from cutover.shadow.ledger.uow import LedgerUnitOfWork, ensure_schema
from cutover.shadow.ledger.writers import writer_for

REVERSAL_SUFFIX: Final = ".reversal"


def reverse(engine: object, book: str, txn_id: str, kind: str) -> int:
    """Post the negation of entry (book, txn_id, kind); return the new entry's seq."""
    if book not in BOOK_IDS:
        raise LedgerError(f"book must be one of {sorted(BOOK_IDS)}, got {book!r}")
    ensure_schema(engine)  # type: ignore[arg-type]
    with LedgerUnitOfWork(engine) as uow:  # type: ignore[arg-type]
        writer = writer_for(uow)
        cur = writer.cur
        cur.execute(uow.sql("SELECT seq, currency FROM ledger_entries"
                            " WHERE book_id = ? AND txn_id = ? AND kind = ?"),
                    (BOOK_IDS[book], txn_id, kind))
        found = cur.fetchone()
        if found is None:
            raise LedgerError(f"no entry (book {book}, txn {txn_id}, kind {kind}) to reverse")
        cur.execute(uow.sql("SELECT a.name, a.account_class, a.account_id, p.amount_minor"
                            " FROM ledger_postings p JOIN ledger_accounts a"
                            " ON a.account_id = p.account_id WHERE p.entry_seq = ?"
                            " ORDER BY p.line"), (found[0],))
        legs = cur.fetchall()
        plan = Plan(np.array([BOOK_IDS[book]], np.int64), pa.array([txn_id]),
                    pa.array([kind + REVERSAL_SUFFIX]),
                    pa.array([int(datetime.now(UTC).timestamp() * 1_000_000)], pa.int64()),
                    pa.array([found[1]]), pa.array([r[0] for r in legs]),
                    pa.array([r[1] for r in legs]),
                    np.array([-int(r[3]) for r in legs], np.int64))
        check_balanced(plan)
        entries = chain_entries(plan, writer.head())
        ids = np.array([int(r[2]) for r in legs], np.int64)
        try:
            writer.write(writer.encode_entries(entries), *posting_rows(plan, entries, ids))
        except Exception as exc:
            if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                raise LedgerError(f"entry (book {book}, txn {txn_id}, kind {kind}) is already"
                                  " reversed") from exc
            raise
        uow.commit()
        return int(entries["seq"][0].as_py())

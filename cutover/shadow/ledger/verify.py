"""Verify the ledger from its rows alone: the audit chain, zero books, balances = postings.

This is the read-back path that proves what ``apply`` asserted on the way in: recompute every
entry's hash in ``seq`` order and name the first entry that does not match; prove each book
sums to zero per currency from the postings; prove the balances table equals the postings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

import numpy as np
import pyarrow as pa
from sqlalchemy import Connection, Engine, func, select

from cutover.shadow.ledger import chain
from cutover.shadow.ledger.schema import (
    BOOK_NAMES,
    accounts,
    balances,
    books,
    entries,
    postings,
    progress,
)

#: Entries read and rechecked per page; bounds memory whatever the ledger's size.
VERIFY_PAGE_ENTRIES: Final = 50_000
VERIFY_PAGES_MAX: Final = 1_000_000


@dataclass(frozen=True)
class Break:
    """The first entry whose stored chain does not match its content."""

    seq: int
    book: str
    txn_id: str
    kind: str
    reason: str

    def __str__(self) -> str:
        return (f"entry seq={self.seq} (book {self.book}, txn {self.txn_id}, kind {self.kind}):"
                f" {self.reason}")


@dataclass
class VerifyReport:
    """What ``verify_ledger`` found."""

    entries: int = 0
    chain_break: Break | None = None
    book_sums: list[dict[str, object]] = field(default_factory=list)
    balance_drift: list[dict[str, object]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the chain, the books and the balances all check out."""
        return self.chain_break is None and not self.balance_drift and all(
            row["sum_minor"] == 0 for row in self.book_sums)


def verify_ledger(engine: Engine) -> VerifyReport:
    """Check the chain, the zero-sum books and the balances; never raises on a finding."""
    report = VerifyReport()
    with engine.connect() as conn:
        report.chain_break, report.entries = _verify_chain(conn)
        if report.chain_break is None:
            report.chain_break = _check_recorded_head(conn)
        if report.chain_break is None:
            report.chain_break = _check_books(conn)
        report.book_sums = _book_sums(conn)
        report.balance_drift = _balance_drift(conn)
    return report


def _verify_chain(conn: Connection) -> tuple[Break | None, int]:
    prev_seq, prev_hash, checked = 0, chain.GENESIS_HASH, 0
    for _ in range(VERIFY_PAGES_MAX):
        page = conn.execute(
            select(entries.c.seq, entries.c.book_id, entries.c.txn_id, entries.c.kind,
                   entries.c.ts_us, entries.c.currency, entries.c.prev_hash, entries.c.hash)
            .where(entries.c.seq > prev_seq).order_by(entries.c.seq)
            .limit(VERIFY_PAGE_ENTRIES)).all()
        if not page:
            return None, checked
        found = _check_page(conn, page, prev_seq, prev_hash)
        if found is not None:
            return found, checked
        checked += len(page)
        prev_seq, prev_hash = int(page[-1].seq), str(page[-1].hash)
    raise AssertionError(f"ledger has more than {VERIFY_PAGES_MAX} pages of entries")


def _check_recorded_head(conn: Connection) -> Break | None:
    """The head each apply recorded must still be in the chain: catches a truncated tail."""
    recorded = conn.execute(select(progress.c.head_seq, progress.c.head_hash, progress.c.part)
                            .order_by(progress.c.head_seq.desc()).limit(1)).first()
    if recorded is None or int(recorded.head_seq) == 0:
        return None
    row = conn.execute(select(entries.c.book_id, entries.c.txn_id, entries.c.kind,
                              entries.c.hash)
                       .where(entries.c.seq == recorded.head_seq)).first()
    if row is not None and row.hash == recorded.head_hash:
        return None
    return Break(int(recorded.head_seq), BOOK_NAMES.get(int(row.book_id), "?") if row else "?",
                 str(row.txn_id) if row else "?", str(row.kind) if row else "?",
                 f"applying {recorded.part} recorded this entry as the chain head, but it is"
                 " missing or its hash changed (entries at the end were deleted or replaced)")


def _check_books(conn: Connection) -> Break | None:
    """The books table must name each book as the chain does: entries hash the name of their
    book_id, so renaming or swapping books behind the ledger's back must not pass."""
    stored = {int(b): str(n) for b, n in conn.execute(select(books.c.book_id, books.c.name))}
    if not stored or stored == {k: v for k, v in BOOK_NAMES.items() if k in stored}:
        return None
    return Break(0, "?", "?", "books", f"the books table reads {stored}, but the chain was"
                 f" written for {dict(BOOK_NAMES)} (a book was renamed or swapped)")


def _check_page(conn: Connection, page: list, prev_seq: int, prev_hash: str) -> Break | None:
    seq = np.array([r.seq for r in page], np.int64)
    gaps = np.flatnonzero(seq != np.arange(prev_seq + 1, prev_seq + 1 + len(seq)))
    legs = conn.execute(
        select(postings.c.entry_seq, accounts.c.name, postings.c.amount_minor,
               accounts.c.account_class, accounts.c.currency)
        .join(accounts, accounts.c.account_id == postings.c.account_id)
        .where(postings.c.entry_seq.between(int(seq[0]), int(seq[-1])))
        .order_by(postings.c.entry_seq, postings.c.line)).all()
    leg_seq = np.array([r.entry_seq for r in legs], np.int64)
    offsets = np.searchsorted(leg_seq, np.append(seq, seq[-1] + 1)).astype(np.int64)
    books = [BOOK_NAMES.get(int(r.book_id), "?") for r in page]
    cols = chain.EntryColumns(
        seq, pa.array(books, pa.string()), pa.array([r.txn_id for r in page], pa.string()),
        pa.array([r.kind for r in page], pa.string()),
        pa.array([r.ts_us for r in page], pa.int64()),
        pa.array([r.currency for r in page], pa.string()),
        pa.array([r.name for r in legs], pa.string()),
        np.array([r.amount_minor for r in legs], np.int64), offsets,
        pa.array([r.account_class for r in legs], pa.string()),
        pa.array([r.currency for r in legs], pa.string()))
    mismatch = chain.first_mismatch(chain.contents(cols), [r.prev_hash for r in page],
                                    [r.hash for r in page], prev_hash, chain.ledger_key())
    index = mismatch.index if mismatch is not None else None
    reason = mismatch.reason if mismatch is not None else ""
    if len(gaps) and (index is None or gaps[0] <= index):
        index, reason = int(gaps[0]), f"seq is not {prev_seq + 1 + int(gaps[0])}: entries missing"
    if index is None:
        return None
    row = page[index]
    return Break(int(row.seq), books[index], str(row.txn_id), str(row.kind), reason)


def _book_sums(conn: Connection) -> list[dict[str, object]]:
    """Sum of postings per book and currency, straight from the postings."""
    rows = conn.execute(
        select(entries.c.book_id, accounts.c.currency, func.sum(postings.c.amount_minor))
        .select_from(postings.join(entries, entries.c.seq == postings.c.entry_seq)
                     .join(accounts, accounts.c.account_id == postings.c.account_id))
        .group_by(entries.c.book_id, accounts.c.currency)
        .order_by(entries.c.book_id, accounts.c.currency)).all()
    return [{"book": BOOK_NAMES.get(int(b), "?"), "currency": c, "sum_minor": int(s)}
            for b, c, s in rows]


def _balance_drift(conn: Connection) -> list[dict[str, object]]:
    """Accounts whose stored balance differs from the sum of their postings."""
    sums = (select(entries.c.book_id, postings.c.account_id,
                   func.sum(postings.c.amount_minor).label("total"))
            .select_from(postings.join(entries, entries.c.seq == postings.c.entry_seq))
            .group_by(entries.c.book_id, postings.c.account_id)).subquery()
    from_postings = {(int(b), int(a)): int(t) for b, a, t in conn.execute(select(sums)).all()}
    stored = {(int(b), int(a)): int(v) for b, a, v in conn.execute(
        select(balances.c.book_id, balances.c.account_id, balances.c.balance_minor)).all()}
    drift = []
    for key in sorted(set(from_postings) | set(stored)):
        if from_postings.get(key, 0) != stored.get(key, 0):
            drift.append({"book": BOOK_NAMES.get(key[0], "?"), "account_id": key[1],
                          "stored_minor": stored.get(key, 0),
                          "postings_minor": from_postings.get(key, 0)})
    return drift

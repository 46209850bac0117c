"""The shadow ledger's tables, declared once with SQLAlchemy Core for SQLite and PostgreSQL.

The ledger is a double-entry twin of two sets of books (what legacy booked, what the candidate
would have booked). It is append-only: entries and postings are inserted, never updated or
deleted; a correction is a reversing entry.

References between tables (postings -> entries, accounts; balances -> books, accounts) are not
declared as foreign keys: PostgreSQL checks a foreign key with a trigger per row, which made
COPY three times slower (37k against 121k postings/s measured), and SQLite does not enforce
them by default. The single write path in ``apply`` and the read-back in ``verify`` (chain,
zero books, balances equal postings) keep them consistent instead.

The only table updated in place is ``ledger_balances``, a running total per (book, account)
kept in the same transaction as the postings so that it can be checked against them.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import (
    BigInteger,
    Column,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    UniqueConstraint,
)

#: Book ids are fixed so that a posting plan can be built before touching the database.
BOOK_IDS: Final[dict[str, int]] = {"legacy": 1, "candidate": 2}
BOOK_NAMES: Final[dict[int, str]] = {v: k for k, v in BOOK_IDS.items()}

#: SQLite makes an ``INTEGER PRIMARY KEY`` the rowid, which is the cheapest key to append to;
#: PostgreSQL gets a 64-bit column.
_ID = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

books = Table(
    "ledger_books", metadata,
    Column("book_id", SmallInteger, primary_key=True, autoincrement=False),
    Column("name", String(16), nullable=False, unique=True),
)

accounts = Table(
    "ledger_accounts", metadata,
    Column("account_id", _ID, primary_key=True, autoincrement=True),
    Column("name", String(200), nullable=False, comment="CLASS:key, e.g. MERCHANT_PAYABLE:M001"),
    Column("account_class", String(32), nullable=False),
    Column("currency", String(3), nullable=False),
    UniqueConstraint("name", "currency", name="uq_ledger_account"),
)

entries = Table(
    "ledger_entries", metadata,
    Column("seq", _ID, primary_key=True, autoincrement=False,
           comment="total order of the audit chain, 1-based, no gaps"),
    Column("book_id", SmallInteger, nullable=False, comment="ledger_books.book_id"),
    Column("txn_id", String(128), nullable=False),
    Column("kind", String(48), nullable=False),
    Column("ts_us", BigInteger, comment="transaction time, UTC microseconds since the epoch"),
    Column("currency", String(3), nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    # The idempotency key: re-applying a replay can never post the same thing twice.
    UniqueConstraint("book_id", "txn_id", "kind", name="uq_ledger_entry"),
)

postings = Table(
    "ledger_postings", metadata,
    Column("entry_seq", _ID, primary_key=True, comment="ledger_entries.seq"),
    Column("line", SmallInteger, primary_key=True, autoincrement=False),
    Column("account_id", _ID, nullable=False, comment="ledger_accounts.account_id"),
    Column("amount_minor", BigInteger, nullable=False, comment="debit +, credit -"),
    # Postings arrive in key order, so a clustered (WITHOUT ROWID) table appends cheaply.
    sqlite_with_rowid=False,
)

balances = Table(
    "ledger_balances", metadata,
    Column("book_id", SmallInteger, primary_key=True, comment="ledger_books.book_id"),
    Column("account_id", _ID, primary_key=True, comment="ledger_accounts.account_id"),
    Column("balance_minor", BigInteger, nullable=False, comment="debit +, credit -"),
)

progress = Table(
    "ledger_progress", metadata,
    Column("part", String(255), primary_key=True, comment="diffs part file name"),
    Column("rows_in", BigInteger, nullable=False),
    Column("entries", BigInteger, nullable=False),
    Column("postings", BigInteger, nullable=False),
    Column("head_seq", BigInteger, nullable=False, comment="chain head after this part"),
    Column("head_hash", String(64), nullable=False),
    Column("applied_at", String(32), nullable=False),
)

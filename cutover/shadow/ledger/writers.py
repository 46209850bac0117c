"""Bulk writes of a chained plan, one class per database, behind the same small interface.

SQLite: the sqlite3 driver's ``executemany`` inside the unit of work's transaction (about four
times SQLAlchemy's generic insert). PostgreSQL: psycopg 3 ``COPY ... FROM STDIN``: entries as
CSV that pyarrow writes for a whole batch at once, postings (four integer columns, twice as
many rows) in COPY's binary format built by NumPy as one array of fixed-size records, so
neither side formats or parses a number as text. Both only ever INSERT into entries and postings;
balances are upserted (added to) in the same transaction.
"""

from __future__ import annotations

import io
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from cutover.errors import InvariantBroken
from cutover.shadow.ledger.chain import GENESIS_HASH
from cutover.shadow.ledger.schema import BOOK_IDS
from cutover.shadow.ledger.uow import LedgerUnitOfWork

_KEY_SEP: Final = "\x1f"
_ENTRY_COLUMNS: Final = ("seq", "book_id", "txn_id", "kind", "ts_us", "currency", "prev_hash",
                         "hash")
_POSTING_COLUMNS: Final = ("entry_seq", "line", "account_id", "amount_minor")
#: COPY BINARY framing: signature, flags, header extension length; the trailer ends the data.
_PGCOPY_HEADER: Final = b"PGCOPY\n\xff\r\n\x00" + b"\x00\x00\x00\x00" + b"\x00\x00\x00\x00"
_PGCOPY_TRAILER: Final = b"\xff\xff"
#: One ledger_postings row in COPY BINARY: field count, then (byte length, big-endian value) per
#: column, with the column types of the schema (bigint, smallint, bigint, bigint).
_POSTING_RECORD: Final = np.dtype([
    ("fields", ">i2"), ("seq_len", ">i4"), ("entry_seq", ">i8"), ("line_len", ">i4"),
    ("line", ">i2"), ("account_len", ">i4"), ("account_id", ">i8"), ("amount_len", ">i4"),
    ("amount_minor", ">i8")])


class LedgerWriter:
    """Reads and writes of one unit of work; SQLite by default, see ``PostgresWriter``."""

    def __init__(self, uow: LedgerUnitOfWork) -> None:
        self.uow = uow
        self.cur = uow.conn.cursor()

    def seed_books(self) -> None:
        """Make sure both books exist (fixed ids)."""
        self.cur.executemany(self.uow.sql(
            "INSERT INTO ledger_books (book_id, name) VALUES (?, ?) ON CONFLICT DO NOTHING"),
            [(book_id, name) for name, book_id in BOOK_IDS.items()])

    def head(self) -> tuple[int, str]:
        """The chain head: the last entry's seq and hash (0 and the genesis hash if empty)."""
        self.cur.execute("SELECT seq, hash FROM ledger_entries ORDER BY seq DESC LIMIT 1")
        row = self.cur.fetchone()
        return (0, GENESIS_HASH) if row is None else (int(row[0]), str(row[1]))

    def part_done(self, part: str) -> bool:
        """True when ``part`` was already applied (its progress row is committed)."""
        self.cur.execute(self.uow.sql("SELECT 1 FROM ledger_progress WHERE part = ?"), (part,))
        return self.cur.fetchone() is not None

    def account_ids(self, names: pa.Array, classes: pa.Array, currencies: pa.Array) -> np.ndarray:
        """The account id of each posting, creating the accounts that do not exist yet."""
        keys = pc.binary_join_element_wise(names, currencies, _KEY_SEP)
        unique_keys = pc.unique(keys)
        first = pc.index_in(unique_keys, keys).to_numpy()
        wanted = dict(zip(unique_keys.to_pylist(), zip(names.take(first).to_pylist(),
                      classes.take(first).to_pylist(), currencies.take(first).to_pylist(),
                      strict=True), strict=True))
        known = self._lookup_accounts(list(wanted))
        missing = [wanted[k] for k in wanted if k not in known]
        if missing:
            self.cur.executemany(self.uow.sql(
                "INSERT INTO ledger_accounts (name, account_class, currency) VALUES (?, ?, ?)"),
                missing)
            known.update(self._lookup_accounts([f"{n}{_KEY_SEP}{c}" for n, _, c in missing]))
        ids = np.fromiter((known[k] for k in unique_keys.to_pylist()), np.int64,
                          len(unique_keys))
        return ids[pc.index_in(keys, unique_keys).to_numpy()]

    def _lookup_accounts(self, keys: list[str]) -> dict[str, int]:
        """Ids of the accounts among ``keys`` that exist, joined through a temporary table."""
        self.cur.execute("CREATE TEMP TABLE IF NOT EXISTS ledger_wanted"
                         " (name TEXT NOT NULL, currency TEXT NOT NULL)")
        self.cur.execute("DELETE FROM ledger_wanted")
        self.cur.executemany(self.uow.sql(
            "INSERT INTO ledger_wanted (name, currency) VALUES (?, ?)"),
            [tuple(k.split(_KEY_SEP)) for k in keys])
        self.cur.execute("SELECT a.name, a.currency, a.account_id FROM ledger_accounts a"
                         " JOIN ledger_wanted w ON w.name = a.name AND w.currency = a.currency")
        return {f"{n}{_KEY_SEP}{c}": int(i) for n, c, i in self.cur.fetchall()}

    def existing_entry_keys(self, txn_ids: list[str]) -> set[tuple[int, str, str]]:
        """The (book_id, txn_id, kind) keys already in the ledger for these transactions."""
        self.cur.execute("CREATE TEMP TABLE IF NOT EXISTS ledger_txns (t TEXT PRIMARY KEY)")
        self.cur.execute("DELETE FROM ledger_txns")
        self.cur.executemany(self.uow.sql("INSERT INTO ledger_txns (t) VALUES (?)"),
                             [(t,) for t in set(txn_ids)])
        self.cur.execute("SELECT e.book_id, e.txn_id, e.kind FROM ledger_entries e"
                         " JOIN ledger_txns t ON t.t = e.txn_id")
        return {(int(b), str(t), str(k)) for b, t, k in self.cur.fetchall()}

    @staticmethod
    def encode_entries(entries: pa.Table) -> list[tuple[Any, ...]]:
        """Entry rows as the tuples ``executemany`` binds (done off the writer thread)."""
        return list(zip(*(entries[c].to_pylist() for c in _ENTRY_COLUMNS), strict=True))

    def write(self, encoded_entries: Any, postings: pa.Table, deltas: pa.Table) -> None:
        """Insert entries and postings and add the deltas to the balances."""
        self.cur.executemany(
            f"INSERT INTO ledger_entries ({', '.join(_ENTRY_COLUMNS)}) VALUES (?,?,?,?,?,?,?,?)",
            encoded_entries)
        self.cur.executemany(
            f"INSERT INTO ledger_postings ({', '.join(_POSTING_COLUMNS)}) VALUES (?,?,?,?)",
            zip(*(postings[c].to_pylist() for c in _POSTING_COLUMNS), strict=True))
        self.upsert_balances(deltas)

    def upsert_balances(self, deltas: pa.Table) -> None:
        """Add each (book, account) delta to its running balance."""
        self.cur.executemany(self.uow.sql(
            "INSERT INTO ledger_balances (book_id, account_id, balance_minor) VALUES (?, ?, ?)"
            " ON CONFLICT (book_id, account_id)"
            " DO UPDATE SET balance_minor = ledger_balances.balance_minor"
            " + excluded.balance_minor"),
            zip(*(deltas[c].to_pylist() for c in ("book_id", "account_id", "amount_minor")),
                strict=True))

    def record_progress(self, part: str, rows_in: int, entries: int, postings: int,
                        head: tuple[int, str], applied_at: str) -> None:
        """Mark ``part`` applied, in the same transaction as its postings."""
        self.cur.execute(self.uow.sql(
            "INSERT INTO ledger_progress (part, rows_in, entries, postings, head_seq,"
            " head_hash, applied_at) VALUES (?, ?, ?, ?, ?, ?, ?)"),
            (part, rows_in, entries, postings, head[0], head[1], applied_at))

    def read_back(self, after_seq: int) -> tuple[int, int, int]:
        """(entries, postings, postings sum) after ``after_seq``: two range scans, no join."""
        self.cur.execute(self.uow.sql("SELECT COUNT(*) FROM ledger_entries WHERE seq > ?"),
                         (after_seq,))
        entries = int(self.cur.fetchone()[0])
        self.cur.execute(self.uow.sql("SELECT COUNT(*), COALESCE(SUM(amount_minor), 0)"
                                      " FROM ledger_postings WHERE entry_seq > ?"), (after_seq,))
        postings, total = self.cur.fetchone()
        return entries, int(postings), int(total)


class PostgresWriter(LedgerWriter):
    """PostgreSQL: entries and postings go in with COPY, fed by pyarrow's CSV writer."""

    @staticmethod
    def encode_entries(entries: pa.Table) -> bytes:
        """Entry rows as the CSV that COPY reads (done off the writer thread)."""
        return _csv(entries.select(list(_ENTRY_COLUMNS)))

    def write(self, encoded_entries: Any, postings: pa.Table, deltas: pa.Table) -> None:
        """COPY entries and postings, then add the deltas to the balances."""
        self._copy("ledger_entries", _ENTRY_COLUMNS, encoded_entries, "csv")
        self._copy("ledger_postings", _POSTING_COLUMNS, _binary_postings(postings), "binary")
        self.upsert_balances(deltas)

    def _copy(self, table: str, columns: tuple[str, ...], data: bytes, fmt: str) -> None:
        with self.cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN"
                           f" WITH (FORMAT {fmt})") as copy:
            copy.write(data)


def _binary_postings(postings: pa.Table) -> bytes:
    """ledger_postings rows as COPY BINARY data (header, fixed-size records, trailer).

    Every column is NOT NULL and integer, so each record has the same size and the whole
    batch is four strided NumPy writes. A value outside its column's type is refused here
    rather than wrapped.
    """
    n = postings.num_rows
    nulls = [c for c in _POSTING_COLUMNS if postings[c].null_count]
    if nulls:
        raise InvariantBroken(f"ledger_postings: null values in {nulls}")
    values = {c: postings[c].to_numpy() for c in _POSTING_COLUMNS}
    line = values["line"]
    if n and (int(line.min()) < -2**15 or int(line.max()) >= 2**15):
        raise InvariantBroken("ledger_postings: a line number does not fit a smallint")
    records = np.empty(n, _POSTING_RECORD)
    records["fields"] = len(_POSTING_COLUMNS)
    for length, column, size in (("seq_len", "entry_seq", 8), ("line_len", "line", 2),
                                 ("account_len", "account_id", 8),
                                 ("amount_len", "amount_minor", 8)):
        records[length] = size
        records[column] = values[column]
    return _PGCOPY_HEADER + records.tobytes() + _PGCOPY_TRAILER


def _csv(data: pa.Table) -> bytes:
    """Headerless CSV of ``data``; nulls become unquoted empty fields, which COPY reads as NULL."""
    buffer = io.BytesIO()
    pacsv.write_csv(data, buffer, pacsv.WriteOptions(include_header=False))
    return buffer.getvalue()


def writer_class(dialect: str) -> type[LedgerWriter]:
    """The writer class for a SQLAlchemy dialect name."""
    return PostgresWriter if dialect == "postgresql" else LedgerWriter


def writer_for(uow: LedgerUnitOfWork) -> LedgerWriter:
    """The writer for the unit of work's database."""
    return writer_class(uow.dialect)(uow)

"""The ledger's unit of work: one locked database transaction that rolls back unless committed.

Every write to the ledger happens inside ``LedgerUnitOfWork``. On entry it takes the ledger's
single writer lock, so two processes applying to the same database serialise instead of
racing for the chain head: SQLite gets ``BEGIN IMMEDIATE`` (waiting up to ``BUSY_TIMEOUT_S``),
PostgreSQL a transaction-scoped advisory lock keyed on the schema. It hands out the raw DBAPI
connection because the bulk paths (sqlite3 ``executemany``, psycopg ``COPY``) are several
times faster than SQLAlchemy's generic insert.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from cutover.errors import StoreError
from cutover.shadow.ledger.schema import metadata

#: How long a writer waits for another writer's transaction before giving up.
BUSY_TIMEOUT_S: Final = 120.0
#: Two processes creating the schema at once may collide; the loser retries this many times.
SCHEMA_ATTEMPTS_MAX: Final = 3
#: SQLite's default automatic checkpoint threshold, restored after a manual-checkpoint apply.
WAL_AUTOCHECKPOINT_PAGES: Final = 1000
DEFAULT_DB_NAME: Final = "ledger.db"
_PG_LOCK_NAME: Final = ".cutover_shadow_ledger"
SUPPORTED_DIALECTS: Final = ("sqlite", "postgresql")


def default_url(run_dir: Path) -> str:
    """The ledger URL used when none is given: ``sqlite:///RUN_DIR/ledger.db``."""
    return f"sqlite:///{Path(run_dir).resolve() / DEFAULT_DB_NAME}"


def make_engine(url: str) -> Engine:
    """An engine for ``url`` with the ledger's connection settings; StoreError if unusable."""
    try:
        if url.startswith("sqlite"):
            engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_S})
            event.listen(engine, "connect", _sqlite_pragmas)
        else:
            engine = create_engine(url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"ledger database URL {_redact(url)!r} is unusable: {exc}") from exc
    if engine.dialect.name not in SUPPORTED_DIALECTS:
        raise StoreError(f"ledger database {engine.dialect.name!r} is not supported;"
                         f" use one of {', '.join(SUPPORTED_DIALECTS)}")
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """WAL lets readers run beside the writer; NORMAL sync is safe against process kills."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_S * 1000)}")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.close()


def _redact(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        from sqlalchemy.engine import make_url
        return make_url(url).render_as_string(hide_password=True)
    except (SQLAlchemyError, ValueError):
        return "<unparseable URL>"


def ensure_schema(engine: Engine) -> None:
    """Create the ledger tables that do not exist yet (safe to run from two processes)."""
    for attempt in range(1, SCHEMA_ATTEMPTS_MAX + 1):
        try:
            metadata.create_all(engine, checkfirst=True)
            return
        except DBAPIError as exc:
            # Another process created a table between our check and our CREATE: look again.
            if attempt == SCHEMA_ATTEMPTS_MAX:
                raise StoreError(f"cannot create the ledger schema in"
                                 f" {_redact(str(engine.url))}: {exc.orig}") from exc


class LedgerUnitOfWork:
    """``with LedgerUnitOfWork(engine) as uow: ...; uow.commit()`` — rolls back otherwise."""

    def __init__(self, engine: Engine, manual_checkpoints: bool = False) -> None:
        self.engine = engine
        #: SQLite only: a WalCheckpointer checkpoints, so commits do not stall on it.
        self.manual_checkpoints = manual_checkpoints
        self.dialect = engine.dialect.name
        self.committed = False
        self._raw: Any = None
        self._saved_isolation: Any = None
        self.conn: Any = None

    def __enter__(self) -> LedgerUnitOfWork:
        try:
            self._raw = self.engine.raw_connection()
            self.conn = self._raw.driver_connection
            self._begin_locked()
        except Exception as exc:
            self._close()
            raise StoreError(f"cannot open a ledger transaction on"
                             f" {_redact(str(self.engine.url))}: {exc}") from exc
        return self

    def _begin_locked(self) -> None:
        if self.dialect == "sqlite":
            self._saved_isolation = self.conn.isolation_level
            # Manual transaction control: the sqlite3 module must not issue its own BEGIN.
            self.conn.isolation_level = None
            if self.manual_checkpoints:
                self.conn.execute("PRAGMA wal_autocheckpoint=0")
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            self.conn.execute("SELECT pg_advisory_xact_lock(hashtext(current_schema() || %s))",
                              (_PG_LOCK_NAME,))

    def sql(self, text: str) -> str:
        """Translate ``?`` placeholders to the driver's style."""
        return text if self.dialect == "sqlite" else text.replace("?", "%s")

    def commit(self) -> None:
        """Make the transaction's writes durable and release the writer lock."""
        if self.dialect == "sqlite":
            self.conn.execute("COMMIT")
        else:
            self.conn.commit()
        self.committed = True

    def rollback(self) -> None:
        """Discard the transaction's writes and release the writer lock."""
        if self.dialect == "sqlite":
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
        else:
            self.conn.rollback()

    def __exit__(self, *exc_info: object) -> None:
        try:
            if not self.committed:
                self.rollback()
        finally:
            self._close()

    def _close(self) -> None:
        if self._raw is None:
            return
        if self.dialect == "sqlite" and self.conn is not None:
            self.conn.isolation_level = self._saved_isolation
            if self.manual_checkpoints:
                self.conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
        self._raw.close()
        self._raw = None

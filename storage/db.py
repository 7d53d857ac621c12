"""Engines and units of work.

SQLite is the embedded default and runs in WAL mode with `synchronous=NORMAL`: readers never
block the writer, and a commit survives a crash of the process (the last transactions can be
lost only if the machine itself loses power). The WAL file is cut back to
`SQLITE_WAL_SIZE_LIMIT` each time SQLite starts it over, so a burst does not leave it large.
Every write transaction on SQLite starts with `BEGIN IMMEDIATE`, so two processes can never
both read a row and then race to change it: the second waits (up to `busy_timeout`) instead
of failing half-way. Read-only units of work (`read_scope`) use a plain deferred `BEGIN` and
never wait for a writer.

PostgreSQL uses psycopg 3 with a small pool; row locks (`FOR UPDATE SKIP LOCKED`) and
advisory locks give the same guarantees across processes and machines.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import orjson
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlmodel import Session

SQLITE_BUSY_TIMEOUT_MS = 10_000
# The size SQLite cuts the WAL file back to whenever it starts the WAL over. Without a limit
# the file stays as large as the longest burst made it: a burst of webhooks during which
# no checkpoint could finish leaves hundreds of MB behind for good (docs/ingestion.md).
SQLITE_WAL_SIZE_LIMIT = 64 << 20


class DatabaseUnavailable(RuntimeError):
    """The database cannot take a read or a write right now."""


def _json_text(value: object) -> str:
    """JSON columns (raw Stripe objects, Block Kit payloads) through orjson: several times
    faster than the json module on the worker's path, and the same values read back."""
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def make_engine(url: str, *, pool_size: int = 5, echo: bool = False) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo=echo)
    return create_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size * 2,
        pool_pre_ping=True,
        pool_timeout=5,
        connect_args={"connect_timeout": 5} if parsed.get_backend_name() == "postgresql" else {},
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
    )


def _sqlite_engine(url: str, *, echo: bool) -> Engine:
    engine = create_engine(
        url,
        echo=echo,
        connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
        json_serializer=_json_text,
        json_deserializer=orjson.loads,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:
        # Let SQLAlchemy, not the driver, decide when transactions begin.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if make_url(url).database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_WAL_SIZE_LIMIT}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection) -> None:
        immediate = not connection.get_execution_options().get("sqlite_read_only", False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One unit of work: commits when the block ends, rolls back if it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def read_scope(engine: Engine) -> Iterator[Session]:
    """A read-only unit of work. On SQLite it never waits for a writer."""
    bind = engine.execution_options(sqlite_read_only=True) if is_sqlite(engine) else engine
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
        finally:
            session.rollback()


def ping(engine: Engine) -> None:
    """Raise `DatabaseUnavailable` unless the database answers a trivial query."""
    try:
        with engine.connect().execution_options(sqlite_read_only=True) as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:  # any driver error means "not usable now"
        raise DatabaseUnavailable(str(exc).splitlines()[0]) from exc

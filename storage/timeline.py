"""Writing and reading a customer's activity timeline.

`add_timeline_entry` is idempotent on `source_key`: the caller names each happening once
(`f"{event_id}:{kind}"` for things that can repeat, `f"{object_id}:{kind}"` for things that
happen once per object, such as an invoice being paid), and a second write of the same key,
whether from a retried worker, a duplicate event or a backfill, is a no-op. It is a single
`INSERT ... ON CONFLICT DO NOTHING`, with no read first.

The worker writes many lines per batch: it asks for them to be held (`hold_timeline_entries`),
the handlers record them (`record_timeline_entry`), and they are all written with one
statement (`write_held_timeline_entries`) at the end of the batch, in the order they were
recorded, so the rows and their ids come out as if each had been written at once. Nothing
reads the timeline inside a batch.
"""

from __future__ import annotations

from datetime import datetime
from operator import itemgetter

from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlmodel import Session, select

from storage.models import TimelineEntry
from storage.raw_inserts import raw_insert

_INSERTS = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}
_HELD = "timeline.held_entries"


def add_timeline_entry(
    *,
    session: Session,
    customer_id: str,
    occurred_at: datetime,
    kind: str,
    summary: str,
    source_key: str,
    event_id: str | None = None,
    object_id: str | None = None,
    actor: str | None = None,
) -> bool:
    """Add one line to the customer's timeline; False when `source_key` was already there."""
    row = _row(customer_id, occurred_at, kind, summary, source_key, event_id, object_id, actor)
    connection = session.connection()
    # A Core insert on the unit of work's connection: no ORM round trip, no RETURNING
    # (so rowcount is exact), and nothing pending needs flushing for it. The statement is
    # built once, so its compiled form is found in SQLAlchemy's cache without rebuilding it.
    return connection.execute(_statement(connection), row).rowcount == 1


def record_timeline_entry(
    *,
    session: Session,
    customer_id: str,
    occurred_at: datetime,
    kind: str,
    summary: str,
    source_key: str,
    event_id: str | None = None,
    object_id: str | None = None,
) -> None:
    """`add_timeline_entry` for callers that need no answer: queued while the session holds
    timeline entries (`hold_timeline_entries`), else written at once."""
    row = _row(customer_id, occurred_at, kind, summary, source_key, event_id, object_id, None)
    held = session.info.get(_HELD)
    if held is not None:
        held.append(row)
    else:
        connection = session.connection()
        connection.execute(_statement(connection), row)


def _row(
    customer_id: str,
    occurred_at: datetime,
    kind: str,
    summary: str,
    source_key: str,
    event_id: str | None,
    object_id: str | None,
    actor: str | None,
) -> dict[str, object]:
    return {
        "customer_id": customer_id,
        "occurred_at": occurred_at,
        "kind": kind,
        "summary": summary,
        "event_id": event_id,
        "object_id": object_id,
        "actor": actor,
        "source_key": source_key[:512],
    }


def hold_timeline_entries(*, session: Session) -> None:
    """Queue this session's timeline lines until `write_held_timeline_entries`."""
    session.info.setdefault(_HELD, [])


def write_held_timeline_entries(*, session: Session) -> None:
    """Write the queued lines with one statement (the driver's executemany of tuples, see
    storage/raw_inserts.py), in the order they came."""
    rows = session.info.pop(_HELD, None)
    if rows:
        connection = session.connection()
        _statement(connection)  # (refuses other databases)
        insert = raw_insert(_TABLE, _COLUMNS, connection.dialect, tail=_IGNORE_DUPLICATES)
        values = itemgetter(*_COLUMNS)
        insert.execute(connection, [insert.parameters(values(row)) for row in rows])


def _statement(connection):
    statement = _STATEMENTS.get(connection.dialect.name)
    if statement is None:
        raise RuntimeError(
            f"timeline entries need PostgreSQL or SQLite, not {connection.dialect.name}"
        )
    return statement


_STATEMENTS = {
    name: insert(TimelineEntry.__table__).on_conflict_do_nothing(index_elements=["source_key"])
    for name, insert in _INSERTS.items()
}
_TABLE = TimelineEntry.__table__
_COLUMNS = (
    "customer_id",
    "occurred_at",
    "kind",
    "summary",
    "event_id",
    "object_id",
    "actor",
    "source_key",
)  # what `_row` gives
_IGNORE_DUPLICATES = " ON CONFLICT (source_key) DO NOTHING"


def timeline_for_customer(
    *, session: Session, customer_id: str, limit: int = 50, before: datetime | None = None
) -> list[TimelineEntry]:
    """The customer's most recent entries first."""
    query = select(TimelineEntry).where(TimelineEntry.customer_id == customer_id)
    if before is not None:
        query = query.where(TimelineEntry.occurred_at < before)
    query = query.order_by(TimelineEntry.occurred_at.desc(), TimelineEntry.id.desc()).limit(limit)
    return list(session.exec(query))

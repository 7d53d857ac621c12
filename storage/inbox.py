"""Queries on the webhook inbox (`stripe_event`).

Everything here is SQLAlchemy Core on purpose: the webhook writes thousands of rows a second
and the worker claims and marks them in batches, so no ORM objects are built on these paths.

Who guarantees what:
- `insert_events` is `INSERT ... ON CONFLICT (id) DO NOTHING RETURNING id`: a second delivery
  of an event is a no-op, and the caller learns which ids were new.
- The worker claims due events with storage/inbox_claim.py (the claim turn, lanes, `FOR
  UPDATE SKIP LOCKED`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from storage.id_lists import is_one_of
from storage.models.inbox import EventStatus
from storage.models.inbox import StripeEvent as InboxEvent

logger = logging.getLogger(__name__)

TABLE = InboxEvent.__table__
FAILED_STATUSES = (EventStatus.PENDING, EventStatus.DEAD)
RETRY_BASE = timedelta(seconds=10)
RETRY_CAP = timedelta(hours=1)
ERROR_MAX_CHARS = 4000


class NewInboxEvent(NamedTuple):
    """One accepted event, ready to insert. `status` is `pending`, or `ignored` for a
    live/test mode this deployment does not accept (`last_error` then says why).

    A named tuple rather than a frozen dataclass: the webhook builds one per request, and a
    frozen dataclass's `__init__` (one `object.__setattr__` per field) cost three times as
    much; its columns are then one slice (`_COLUMNS`). Change it with `_replace`."""

    id: str
    type: str
    api_version: str | None
    livemode: bool
    created: datetime
    object_id: str | None
    payload: str
    source: str
    received_at: datetime
    status: str = EventStatus.PENDING
    last_error: str | None = None
    attempts: int = 0
    lane: int = 0  # `lane_of(owner)`; 0 for an event without an owner
    # Not a column: the object whose stored events' lane this event takes instead, when one
    # is stored (on PostgreSQL, where lanes are used: `_follow_parents`).
    lane_parent: str | None = None


# Every field but the last (`lane_parent`) is a column, in this order.
_NEW_FIELDS = NewInboxEvent._fields[:-1]


@dataclass(frozen=True, slots=True)
class InboxEntry:
    """One inbox row as `billbot events` shows it (no payload)."""

    id: str
    type: str
    status: str
    source: str
    livemode: bool
    created: datetime
    received_at: datetime
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None


def insert_events(*, connection: Connection, events: Sequence[NewInboxEvent]) -> set[str]:
    """Insert events, skipping ids already stored. Returns the ids that were new.

    Runs in the caller's transaction; the caller commits. (`RETURNING` makes this about a
    third dearer than `append_events`; use it where the caller must know which were new.)"""
    if not events:
        return set()
    events = _follow_parents(connection, events)
    statement = _insert(connection).returning(TABLE.c.id)
    return set(connection.execute(statement, _rows(events)).scalars())


def append_events(*, connection: Connection, events: Sequence[NewInboxEvent]) -> int:
    """Insert events, skipping ids already stored. Returns how many were new (the webhook's
    hot path: when that is fewer than given, some were duplicates, which is all it needs)."""
    if not events:
        return 0
    events = _follow_parents(connection, events)
    sql, processors = _raw_insert(connection.dialect)
    rows = []
    for event in events:
        row = list(event[:_COLUMNS])
        for index, process in processors:
            row[index] = process(row[index])
        rows.append(row)
    # The driver's own executemany: SQLAlchemy's per-statement work (compile cache, result
    # objects, insertmanyvalues batching) was most of the writer's cost per batch. Both
    # sqlite3 and psycopg 3 sum the rows inserted over an executemany in `rowcount`.
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.executemany(sql, rows)
        return cursor.rowcount
    finally:
        cursor.close()


def _follow_parents(
    connection: Connection, events: Sequence[NewInboxEvent]
) -> Sequence[NewInboxEvent]:
    """PostgreSQL: an event with a `lane_parent` (a refund, an invoice payment) takes the
    lane of its parent's events, stored before or in this batch, so that it is never
    applied concurrently with them: its links to the charge or the invoice are filled by
    whichever of the two is applied second, which must see the first one's rows. One
    query per batch that has such events, on `object_id`'s index."""
    if connection.dialect.name != "postgresql":
        return events
    parents = {event.lane_parent for event in events if event.lane_parent}
    if not parents:
        return events
    lanes = {e.object_id: e.lane for e in events if e.object_id in parents and not e.lane_parent}
    missing = sorted(parents - lanes.keys())
    if missing:
        query = select(TABLE.c.object_id, TABLE.c.lane).where(TABLE.c.object_id.in_(missing))
        lanes.update({object_id: lane for object_id, lane in connection.execute(query)})
    return [
        event._replace(lane=lanes[event.lane_parent]) if event.lane_parent in lanes else event
        for event in events
    ]


_RAW_INSERTS: dict[str, tuple[str, tuple[tuple[int, Callable[[Any], Any]], ...]]] = {}
_COLUMNS = len(_NEW_FIELDS)  # event[:_COLUMNS]: its values in _NEW_FIELDS order


def _raw_insert(dialect) -> tuple[str, tuple[tuple[int, Callable[[Any], Any]], ...]]:
    """The INSERT in the driver's paramstyle and, for each column that has one, its position
    and SQLAlchemy bind processor (so values are stored exactly as the ORM would store
    them: naive UTC text on SQLite)."""
    cached = _RAW_INSERTS.get(dialect.name)
    if cached is None:
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        names = ", ".join(_NEW_FIELDS)
        markers = ", ".join([marker] * len(_NEW_FIELDS))
        sql = f"INSERT INTO {TABLE.name} ({names}) VALUES ({markers}) ON CONFLICT (id) DO NOTHING"
        processors = (
            (index, TABLE.c[name].type.dialect_impl(dialect).bind_processor(dialect))
            for index, name in enumerate(_NEW_FIELDS)
        )
        cached = (sql, tuple((index, process) for index, process in processors if process))
        _RAW_INSERTS[dialect.name] = cached
    return cached


def _insert(connection: Connection):
    dialect = sqlite if connection.dialect.name == "sqlite" else postgresql
    return dialect.insert(TABLE).on_conflict_do_nothing(index_elements=["id"])


def _rows(events: Sequence[NewInboxEvent]) -> list[dict[str, object]]:
    return [{name: getattr(event, name) for name in _NEW_FIELDS} for event in events]


def mark_applied(*, session: Session, event_ids: Sequence[str], now: datetime) -> None:
    _set_status(session, event_ids, status=EventStatus.APPLIED, error=None, now=now)


def mark_ignored(*, session: Session, event_ids: Sequence[str], reason: str, now: datetime) -> None:
    _set_status(session, event_ids, status=EventStatus.IGNORED, error=reason, now=now)


def _set_status(
    session: Session, event_ids: Sequence[str], *, status: str, error: str | None, now: datetime
) -> None:
    if not event_ids:
        return
    postgresql = session.get_bind().dialect.name == "postgresql"
    session.execute(
        _SET_STATUS[postgresql],
        {"ids": list(event_ids), "status": status, "error": error, "now": now},
    )


def _status_update(*, postgresql: bool):
    """The batch's status UPDATE, built once. On PostgreSQL the ids are one array parameter
    (storage/id_lists.py): an IN list of a thousand ids was rendered by SQLAlchemy and parsed
    by psycopg again for every batch, about 9 ms of the worker's CPU each."""
    return (
        update(TABLE)
        .where(is_one_of(TABLE.c.id, "ids", postgresql=postgresql))
        .values(
            status=bindparam("status"),
            last_error=bindparam("error"),
            next_attempt_at=None,
            applied_at=bindparam("now"),
        )
    )


_SET_STATUS = {postgresql: _status_update(postgresql=postgresql) for postgresql in (False, True)}


def retry_delay(attempts: int) -> timedelta:
    """Exponential backoff after the `attempts`-th failure: 10 s, 20 s, 40 s ... capped at 1 h."""
    return min(RETRY_BASE * (2 ** max(attempts - 1, 0)), RETRY_CAP)


def mark_failed(
    *, session: Session, event_id: str, error: str, now: datetime, max_attempts: int
) -> EventStatus:
    """Count a failed attempt: retry later with backoff, or park as dead after `max_attempts`.

    Returns the new status (`pending` or `dead`)."""
    attempts = (
        session.execute(select(TABLE.c.attempts).where(TABLE.c.id == event_id)).scalar_one() + 1
    )
    dead = attempts >= max_attempts
    session.execute(
        update(TABLE)
        .where(TABLE.c.id == event_id)
        .values(
            status=EventStatus.DEAD if dead else EventStatus.PENDING,
            attempts=attempts,
            last_error=error[:ERROR_MAX_CHARS],
            next_attempt_at=None if dead else now + retry_delay(attempts),
        )
    )
    return EventStatus.DEAD if dead else EventStatus.PENDING


def mark_dead(*, session: Session, event_id: str, error: str) -> None:
    """Park an event that can never succeed (its stored payload is not an event)."""
    session.execute(
        update(TABLE)
        .where(TABLE.c.id == event_id)
        .values(
            status=EventStatus.DEAD,
            attempts=TABLE.c.attempts + 1,
            last_error=error[:ERROR_MAX_CHARS],
            next_attempt_at=None,
        )
    )


def list_events(
    *, session: Session, failed_only: bool = False, limit: int = 50
) -> list[InboxEntry]:
    """Newest first. `failed_only`: events waiting for a retry after a failure, and dead ones."""
    statement = select(
        TABLE.c.id,
        TABLE.c.type,
        TABLE.c.status,
        TABLE.c.source,
        TABLE.c.livemode,
        TABLE.c.created,
        TABLE.c.received_at,
        TABLE.c.attempts,
        TABLE.c.next_attempt_at,
        TABLE.c.last_error,
    )
    if failed_only:
        statement = statement.where(
            or_(
                TABLE.c.status == EventStatus.DEAD,
                and_(TABLE.c.status == EventStatus.PENDING, TABLE.c.attempts > 0),
            )
        )
    statement = statement.order_by(TABLE.c.received_at.desc(), TABLE.c.id).limit(limit)
    return [InboxEntry(*row) for row in session.execute(statement)]


def requeue(*, session: Session, event_id: str) -> str | None:
    """Make one failed, dead or ignored event due now with a fresh attempt count.

    Returns the status it had (an `applied` event is left alone: applying it again would
    only repeat its reactions), or None when no such event is stored."""
    previous = session.execute(
        select(TABLE.c.status).where(TABLE.c.id == event_id)
    ).scalar_one_or_none()
    if previous is None or previous == EventStatus.APPLIED:
        return previous
    session.execute(
        update(TABLE)
        .where(TABLE.c.id == event_id)
        .values(
            status=EventStatus.PENDING,
            attempts=0,
            next_attempt_at=None,
            last_error=None,
            applied_at=None,
        )
    )
    return previous


def count_by_status(*, session: Session) -> dict[str, int]:
    rows = session.execute(select(TABLE.c.status, func.count()).group_by(TABLE.c.status))
    return {status: count for status, count in rows}

"""Queries for the Slack outbox. Keyword-only; the caller owns the session.

The sender claims a row (`claim`) with a lease before calling Slack, so two sender
processes never send the same row, and a sender that died mid-call leaves the row to be
picked up again once its lease runs out.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, event, func, or_, update
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.insert_once import (
    insert_many_ignoring_conflict,
    insert_values_ignoring_conflict,
)
from storage.models.outbox import Operation, OutboxMessage, OutboxStatus
from storage.transaction_memory import current_memory, transaction_memory
from storage.types import utcnow

_OUTBOX = OutboxMessage.__table__
_LATER = "outbox.later"
_WRITES_AT_COMMIT = "outbox.writes_at_commit"


def enqueue(
    *,
    session: Session,
    dedupe_key: str,
    channel: str,
    operation: Operation,
    kind: str,
    payload: dict[str, Any],
    alert_id: int | None = None,
    now: datetime | None = None,
) -> OutboxMessage | None:
    """Queue one message; None if a message with this `dedupe_key` was queued before."""
    message_id = queue_message(
        session=session,
        dedupe_key=dedupe_key,
        channel=channel,
        operation=operation,
        kind=kind,
        payload=payload,
        alert_id=alert_id,
        now=now,
    )
    return None if message_id is None else session.get(OutboxMessage, message_id)


def queue_at_commit(
    *,
    session: Session,
    dedupe_key: str,
    channel: str,
    operation: Operation,
    kind: str,
    payload: dict[str, Any],
    alert_id: int | None = None,
    now: datetime | None = None,
) -> None:
    """`queue_message` for a row nothing in the transaction reads back (a new alert's post).
    It is kept and written with the transaction's others in one `executemany` (still `ON
    CONFLICT (dedupe_key) DO NOTHING`) when the session next writes an outbox row, or when
    it commits; so ids keep the order the messages were queued in, and a rollback drops it
    with the rest of the transaction."""
    later = _later(session)
    later.rows.append(
        _values(dedupe_key, channel, operation, kind, payload, alert_id, now or utcnow())
    )
    _write_at_commit(session)


def before_writing_queued(session: Session, write: Callable[[Session], None]) -> None:
    """Have `write(session)` called once, before this transaction's queued rows are next
    written (at the next `queue_message` or at commit, whether or not rows are queued): for
    rows those messages refer to that are kept to be written together too (the alerts a
    worker batch opens, `storage/alerts.py`). It may queue messages (`queue_at_commit`);
    they are written with the others, after those queued before them."""
    later = _later(session)
    if write not in later.first:
        later.first.append(write)
    _write_at_commit(session)


def _write_at_commit(session: Session) -> None:
    if not session.info.get(_WRITES_AT_COMMIT):
        event.listen(session, "before_commit", write_queued)
        session.info[_WRITES_AT_COMMIT] = True


def write_queued(session: Session) -> None:
    """Write the rows `queue_at_commit` keeps for this transaction, if any (after calling
    what `before_writing_queued` asked for)."""
    later = current_memory(session, _LATER)
    if later is None:
        return
    while later.first:
        later.first.pop(0)(session)
    if not later.rows:
        return
    rows, later.rows = later.rows, []
    insert_many_ignoring_conflict(
        session=session, table=_OUTBOX, rows=rows, conflict_on="dedupe_key"
    )


@dataclass(slots=True)
class _Later:
    transaction: object
    rows: list[dict[str, Any]] = field(default_factory=list)
    first: list[Callable[[Session], None]] = field(default_factory=list)


def _later(session: Session) -> _Later:
    return transaction_memory(session, _LATER, _Later)


def _values(
    dedupe_key: str,
    channel: str,
    operation: Operation,
    kind: str,
    payload: dict[str, Any],
    alert_id: int | None,
    created_at: datetime,
) -> dict[str, Any]:
    return {
        "dedupe_key": dedupe_key,
        "channel": channel,
        "operation": operation,
        "kind": kind,
        "payload": payload,
        "alert_id": alert_id,
        "created_at": created_at,
    }


def queue_message(
    *,
    session: Session,
    dedupe_key: str,
    channel: str,
    operation: Operation,
    kind: str,
    payload: dict[str, Any],
    alert_id: int | None = None,
    now: datetime | None = None,
) -> int | None:
    """`enqueue` for callers that need no ORM object (the worker's alerts): the new row's id,
    or None if a message with this `dedupe_key` was queued before. Flushes nothing."""
    write_queued(session)  # rows queued earlier keep their place
    values = _values(dedupe_key, channel, operation, kind, payload, alert_id, now or utcnow())
    message_id = insert_values_ignoring_conflict(
        session=session, table=_OUTBOX, values=values, conflict_on="dedupe_key"
    )
    if message_id is not None and operation is Operation.UPDATE and alert_id is not None:
        _supersede_older_updates(session=session, alert_id=alert_id, newest_id=message_id)
    return message_id


def _supersede_older_updates(*, session: Session, alert_id: int, newest_id: int | None) -> None:
    """Only the newest rendering of an alert is worth sending: drop queued, unclaimed older ones.
    No flush first: queued rows are inserted directly, never left pending."""
    with session.no_autoflush:
        session.execute(
            update(OutboxMessage)
            .where(
                OutboxMessage.alert_id == alert_id,
                OutboxMessage.operation == Operation.UPDATE,
                OutboxMessage.status == OutboxStatus.PENDING,
                col(OutboxMessage.id) < newest_id,
                col(OutboxMessage.claimed_until).is_(None),
            )
            .values(status=OutboxStatus.SUPERSEDED)
        )


def due_messages(*, session: Session, now: datetime, limit: int = 500) -> list[OutboxMessage]:
    """Pending rows whose retry time has come and that nobody holds a lease on, oldest first."""
    statement = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            or_(
                col(OutboxMessage.next_attempt_at).is_(None),
                col(OutboxMessage.next_attempt_at) <= now,
            ),
            or_(
                col(OutboxMessage.claimed_until).is_(None), col(OutboxMessage.claimed_until) <= now
            ),
        )
        .order_by(col(OutboxMessage.id))
        .limit(limit)
    )
    return list(session.exec(statement))


def next_due_at(*, session: Session) -> datetime | None:
    """When the earliest pending row that is waiting for a retry becomes due."""
    statement = (
        select(OutboxMessage.next_attempt_at)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            col(OutboxMessage.next_attempt_at).is_not(None),
        )
        .order_by(col(OutboxMessage.next_attempt_at))
        .limit(1)
    )
    return session.exec(statement).first()


def claim(*, session: Session, message_id: int, now: datetime, lease: timedelta) -> bool:
    """Take a lease on a pending row; False if another sender holds it or it was settled."""
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.status == OutboxStatus.PENDING,
            or_(
                col(OutboxMessage.claimed_until).is_(None), col(OutboxMessage.claimed_until) <= now
            ),
        )
        .values(claimed_until=now + lease)
    )
    return result.rowcount == 1


def mark_sent(
    *, session: Session, message_id: int, channel: str | None, ts: str | None, now: datetime
) -> None:
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(
            status=OutboxStatus.SENT,
            sent_channel=channel,
            sent_ts=ts,
            sent_at=now,
            claimed_until=None,
            last_error=None,
        )
    )


def mark_retry(
    *, session: Session, message_id: int, at: datetime, error: str, count_attempt: bool
) -> None:
    values: dict[str, Any] = {"next_attempt_at": at, "last_error": error, "claimed_until": None}
    if count_attempt:
        values["attempts"] = OutboxMessage.attempts + 1
    session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(**values))


def mark_failed(
    *, session: Session, message_id: int, error: str, status: OutboxStatus = OutboxStatus.FAILED
) -> None:
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id)
        .values(status=status, last_error=error, claimed_until=None)
    )


def pending_alert_posts(*, session: Session, channel: str, kind: str) -> list[OutboxMessage]:
    """Alert posts of one kind still waiting for a channel: the candidates for a storm summary."""
    statement = (
        select(OutboxMessage)
        .where(
            OutboxMessage.status == OutboxStatus.PENDING,
            OutboxMessage.operation == Operation.POST,
            OutboxMessage.channel == channel,
            OutboxMessage.kind == kind,
            col(OutboxMessage.alert_id).is_not(None),
            col(OutboxMessage.claimed_until).is_(None),
        )
        .order_by(col(OutboxMessage.id))
    )
    return list(session.exec(statement))


def collapse_into_summary(
    *,
    session: Session,
    message_ids: Sequence[int],
    channel: str,
    kind: str,
    payload: dict[str, Any],
    now: datetime,
) -> OutboxMessage:
    """Replace several queued alert posts by one summary row, atomically."""
    summary = OutboxMessage(
        dedupe_key=f"summary:{kind}:{channel}:{min(message_ids)}",
        channel=channel,
        operation=Operation.SUMMARY,
        kind=kind,
        payload=payload,
        created_at=now,
    )
    session.add(summary)
    session.flush()
    session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id).in_(list(message_ids)),
            OutboxMessage.status == OutboxStatus.PENDING,
        )
        .values(status=OutboxStatus.COLLAPSED, collapsed_into=summary.id)
    )
    return summary


def collapsed_alert_ids(*, session: Session, summary_id: int) -> list[int]:
    statement = select(OutboxMessage.alert_id).where(OutboxMessage.collapsed_into == summary_id)
    return [alert_id for alert_id in session.exec(statement) if alert_id is not None]


def alert_post(*, session: Session, alert_id: int) -> OutboxMessage | None:
    statement = select(OutboxMessage).where(
        OutboxMessage.alert_id == alert_id, OutboxMessage.operation == Operation.POST
    )
    return session.exec(statement).first()


def count_by_status(*, session: Session) -> dict[str, int]:
    statement = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
    return {status: count for status, count in session.exec(statement)}


def list_messages(
    *, session: Session, failed_only: bool = False, limit: int = 50
) -> list[OutboxMessage]:
    """Newest first. `failed_only`: rows the sender gave up on, and pending rows that failed
    at least once and wait for a retry (a Slack outage in progress)."""
    statement = select(OutboxMessage)
    if failed_only:
        statement = statement.where(
            or_(
                OutboxMessage.status == OutboxStatus.FAILED,
                and_(
                    OutboxMessage.status == OutboxStatus.PENDING,
                    col(OutboxMessage.last_error).is_not(None),
                ),
            )
        )
    statement = statement.order_by(col(OutboxMessage.id).desc()).limit(limit)
    return list(session.exec(statement))


def message_status(*, session: Session, message_id: int) -> str | None:
    """The status of one row, or None when there is no such row."""
    statement = select(OutboxMessage.status).where(OutboxMessage.id == message_id)
    return session.exec(statement).first()


def requeue_failed(
    *, session: Session, now: datetime, message_ids: Sequence[int] | None = None
) -> int:
    """Give failed rows another go (after fixing a channel or a token, say): all of them, or
    those of `message_ids`. Returns how many were re-queued.

    A failed update of an alert that a newer update has overtaken is marked superseded
    instead: sending it now would put the older rendering back over the newer one."""
    scope = [OutboxMessage.status == OutboxStatus.FAILED]
    if message_ids is not None:
        scope.append(col(OutboxMessage.id).in_(list(message_ids)))
    newer = aliased(OutboxMessage)
    overtaken = (
        select(newer.id)
        .where(
            newer.alert_id == OutboxMessage.alert_id,
            newer.operation == Operation.UPDATE,
            col(newer.id) > OutboxMessage.id,
        )
        .exists()
    )
    session.execute(
        update(OutboxMessage)
        .where(*scope, OutboxMessage.operation == Operation.UPDATE, overtaken)
        .values(status=OutboxStatus.SUPERSEDED)
    )
    result = session.execute(
        update(OutboxMessage)
        .where(*scope)
        .values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now)
    )
    return result.rowcount

"""Housekeeping queries: prune what the retention settings allow, find undelivered messages.

Deletes go in batches (`BATCH` rows per statement, each in the caller's transaction) so a
first prune of a large table never holds a long lock. What is never deleted: inbox events
still pending or dead (they are work, or evidence), outbox rows still pending, and anything
younger than its retention.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlmodel import Session, col

from storage import inbox_claim
from storage.models.inbox import EventStatus, StripeEvent
from storage.models.jobs import JobRun, PostedItem, RunStatus
from storage.models.outbox import OutboxMessage, OutboxStatus

BATCH = 5000
SETTLED_EVENTS = (EventStatus.APPLIED, EventStatus.IGNORED)
SETTLED_MESSAGES = (
    OutboxStatus.SENT,
    OutboxStatus.FAILED,
    OutboxStatus.COLLAPSED,
    OutboxStatus.SUPERSEDED,
)


def prune_inbox_events(*, session: Session, before: datetime, limit: int = BATCH) -> int:
    """Delete up to `limit` applied or ignored events received before `before`."""
    ids = (
        select(StripeEvent.id)
        .where(
            col(StripeEvent.status).in_(SETTLED_EVENTS),
            col(StripeEvent.received_at) < before,
        )
        .limit(limit)
    )
    doomed = list(session.execute(ids).scalars())
    if not doomed:
        return 0
    session.execute(delete(StripeEvent).where(col(StripeEvent.id).in_(doomed)))
    return len(doomed)


def prune_outbox_messages(*, session: Session, before: datetime, limit: int = BATCH) -> int:
    """Delete up to `limit` settled outbox rows created before `before`. A storm summary
    and the rows collapsed into it go together (both are settled and about equally old)."""
    ids = (
        select(OutboxMessage.id)
        .where(
            col(OutboxMessage.status).in_(SETTLED_MESSAGES),
            col(OutboxMessage.created_at) < before,
        )
        .limit(limit)
    )
    doomed = list(session.execute(ids).scalars())
    if not doomed:
        return 0
    session.execute(delete(OutboxMessage).where(col(OutboxMessage.id).in_(doomed)))
    return len(doomed)


def prune_job_history(*, session: Session, before: datetime) -> int:
    """Finished job runs and posted-item keys older than `before`. A key that old cannot
    matter any more: its trial ended, its digest period is long past."""
    runs = session.execute(
        delete(JobRun).where(
            col(JobRun.started_at) < before, col(JobRun.status) != RunStatus.RUNNING
        )
    ).rowcount
    items = session.execute(delete(PostedItem).where(col(PostedItem.posted_at) < before)).rowcount
    return int(runs or 0) + int(items or 0)


def failed_messages(*, session: Session, since: datetime, limit: int = 200) -> list[int]:
    """Ids of outbox rows that were given up on, created since `since`, oldest first."""
    statement = (
        select(OutboxMessage.id)
        .where(
            col(OutboxMessage.status) == OutboxStatus.FAILED,
            col(OutboxMessage.created_at) >= since,
        )
        .order_by(col(OutboxMessage.id))
        .limit(limit)
    )
    return [message_id for message_id in session.execute(statement).scalars() if message_id]


def requeue_messages(*, session: Session, message_ids: list[int], now: datetime) -> int:
    """Make these failed rows pending again, due now, with a fresh attempt count."""
    if not message_ids:
        return 0
    result = session.execute(
        update(OutboxMessage)
        .where(
            col(OutboxMessage.id).in_(message_ids),
            col(OutboxMessage.status) == OutboxStatus.FAILED,
        )
        .values(status=OutboxStatus.PENDING, attempts=0, next_attempt_at=now, claimed_until=None)
    )
    return int(result.rowcount or 0)


def due_inbox_backlog(*, session: Session, now: datetime) -> tuple[int, datetime | None]:
    """How many inbox events are due for the worker now, and when the oldest was received:
    a backlog that only grows means no worker is running."""
    due = inbox_claim.due_clause(now)  # the partial index on pending rows, not a table scan
    count, oldest = session.execute(
        select(func.count(), func.min(StripeEvent.received_at)).where(due)
    ).one()
    return int(count), oldest

"""Queries for bringing the store in line with Stripe: backfill cursors
(`storage.models.sync.SyncCursor`), the ledger questions a backfill asks, and the webhook
feed's health (last event received, signature rejections per minute)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime

from sqlalchemy import func, union
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from storage.models import CustomerMrr, MrrMovement, StripeEvent, Subscription, SubscriptionItem
from storage.models.sync import SyncCursor, SyncStatus, WebhookRejection


def get_cursor(*, session: Session, object_type: str) -> SyncCursor | None:
    return session.get(SyncCursor, object_type)


def list_cursors(*, session: Session) -> list[SyncCursor]:
    return list(session.exec(select(SyncCursor).order_by(SyncCursor.object_type)))


def resumable(cursor: SyncCursor | None, *, since: datetime | None) -> bool:
    """A run can continue where the last one stopped only if that run did not finish and
    read the same slice of history (same `created[gte]` filter)."""
    return cursor is not None and cursor.status != SyncStatus.DONE and cursor.since == since


def start_or_resume(
    *,
    session: Session,
    object_type: str,
    since: datetime | None,
    now: datetime,
    restart: bool = False,
) -> SyncCursor:
    """The cursor this run continues from: the unfinished one, or a fresh one."""
    cursor = get_cursor(session=session, object_type=object_type)
    if cursor is None:
        cursor = SyncCursor(object_type=object_type, started_at=now, updated_at=now)
        session.add(cursor)
    elif restart or not resumable(cursor, since=since):
        cursor.starting_after = None
        cursor.pages = cursor.fetched = cursor.applied = cursor.skipped = 0
        cursor.started_at = now
        cursor.finished_at = None
    cursor.since = since
    cursor.status = SyncStatus.RUNNING
    cursor.last_error = None
    cursor.updated_at = now
    session.flush()
    return cursor


def record_page(
    *,
    session: Session,
    object_type: str,
    last_id: str | None,
    fetched: int,
    applied: int,
    skipped: int = 0,
    now: datetime,
) -> SyncCursor:
    """Move the cursor past one page; call it in the transaction that stored the page."""
    cursor = _require(session, object_type)
    if last_id is not None:
        cursor.starting_after = last_id
    cursor.pages += 1
    cursor.fetched += fetched
    cursor.applied += applied
    cursor.skipped += skipped
    cursor.updated_at = now
    session.flush()
    return cursor


def finish(*, session: Session, object_type: str, now: datetime) -> SyncCursor:
    cursor = _require(session, object_type)
    cursor.status = SyncStatus.DONE
    cursor.finished_at = now
    cursor.updated_at = now
    session.flush()
    return cursor


def mark_failed(
    *, session: Session, object_type: str, error: str, now: datetime
) -> SyncCursor | None:
    cursor = get_cursor(session=session, object_type=object_type)
    if cursor is None:
        return None
    cursor.status = SyncStatus.FAILED
    cursor.last_error = error[:2000]
    cursor.updated_at = now
    session.flush()
    return cursor


def _require(session: Session, object_type: str) -> SyncCursor:
    cursor = get_cursor(session=session, object_type=object_type)
    if cursor is None:
        raise LookupError(f"no sync cursor for {object_type}; call start_or_resume first")
    return cursor


# -- the MRR ledger, for backfilled history ---------------------------------------------------
def customers_unknown_to_ledger(*, session: Session) -> list[str]:
    """Customers with subscriptions in the store and nothing in the ledger (no line, no
    recorded MRR): whose history a backfill may rebuild."""
    known = union(select(CustomerMrr.customer_id), select(MrrMovement.customer_id)).subquery()
    statement = (
        select(Subscription.customer_id)
        .where(col(Subscription.customer_id).not_in(select(known.c.customer_id)))
        .distinct()
        .order_by(Subscription.customer_id)
    )
    return list(session.exec(statement))


def ledger_knows(*, session: Session, customer_id: str) -> bool:
    lines = select(MrrMovement.id).where(MrrMovement.customer_id == customer_id).limit(1)
    recorded = select(CustomerMrr.customer_id).where(CustomerMrr.customer_id == customer_id)
    return (
        session.exec(lines).first() is not None
        or session.exec(recorded.limit(1)).first() is not None
    )


def last_ledger_line_at(*, session: Session, customer_id: str) -> datetime | None:
    statement = select(func.max(MrrMovement.occurred_at)).where(
        MrrMovement.customer_id == customer_id
    )
    return session.exec(statement).one()


def subscriptions_with_items(
    *, session: Session, customer_id: str
) -> list[tuple[Subscription, list[SubscriptionItem]]]:
    subscriptions = list(
        session.exec(
            select(Subscription)
            .where(Subscription.customer_id == customer_id)
            .order_by(Subscription.id)
        )
    )
    items: dict[str, list[SubscriptionItem]] = defaultdict(list)
    if subscriptions:
        ids = [sub.id for sub in subscriptions]
        for item in session.exec(
            select(SubscriptionItem).where(col(SubscriptionItem.subscription_id).in_(ids))
        ):
            items[item.subscription_id].append(item)
    return [(sub, items[sub.id]) for sub in subscriptions]


# -- the webhook feed's health ---------------------------------------------------------------
def last_webhook_received_at(*, session: Session) -> datetime | None:
    """When the newest event that came by webhook (not replay, backfill or reconcile) arrived."""
    statement = select(func.max(StripeEvent.received_at)).where(StripeEvent.source == "webhook")
    return session.exec(statement).one()


def first_subscription_written_at(*, session: Session) -> datetime | None:
    return session.exec(select(func.min(Subscription.updated_at))).one()


def count_subscriptions(*, session: Session, statuses: tuple[str, ...]) -> int:
    statement = (
        select(func.count()).select_from(Subscription).where(col(Subscription.status).in_(statuses))
    )
    return int(session.exec(statement).one())


def add_webhook_rejections(*, session: Session, counts: Mapping[datetime, int]) -> None:
    """Add per-minute rejection counts (one upsert; several processes may add to a minute)."""
    rows = [{"minute": minute, "count": n} for minute, n in sorted(counts.items()) if n]
    if not rows:
        return
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table = WebhookRejection.__table__
    statement = dialect.insert(table)
    statement = statement.on_conflict_do_update(
        index_elements=["minute"], set_={"count": table.c.count + statement.excluded.count}
    )
    session.connection().execute(statement, rows)


def webhook_rejections_since(*, session: Session, since: datetime) -> list[tuple[datetime, int]]:
    """(minute, count) with rejections, oldest first."""
    statement = (
        select(WebhookRejection.minute, WebhookRejection.count)
        .where(WebhookRejection.minute >= since, WebhookRejection.count > 0)
        .order_by(WebhookRejection.minute)
    )
    return [(minute, count) for minute, count in session.exec(statement)]

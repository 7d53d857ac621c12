"""Read queries behind the scheduled messages: trials ending, tasks due, failed payments.
Keyword-only; the caller owns the (read-only) session."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlmodel import Session, col, select

from storage.models.billing import Customer, Invoice, Subscription
from storage.models.tasks import Task, TaskStatus

CONVERTED_STATUSES = ("active", "past_due")


def trials_ending(*, session: Session, start: datetime, end: datetime) -> list[Subscription]:
    """Subscriptions still trialing whose trial ends in [start, end), soonest first."""
    statement = (
        select(Subscription)
        .where(
            Subscription.status == "trialing",
            col(Subscription.trial_end) >= start,
            col(Subscription.trial_end) < end,
        )
        .order_by(col(Subscription.trial_end), col(Subscription.id))
    )
    return list(session.exec(statement))


def trials_ended(*, session: Session, start: datetime, end: datetime) -> list[Subscription]:
    """Subscriptions whose trial ended in [start, end) and that are no longer trialing."""
    statement = (
        select(Subscription)
        .where(
            Subscription.status != "trialing",
            col(Subscription.trial_end) >= start,
            col(Subscription.trial_end) < end,
        )
        .order_by(col(Subscription.trial_end), col(Subscription.id))
    )
    return list(session.exec(statement))


def tasks_due(*, session: Session, on_or_before: date) -> list[Task]:
    """Open tasks due on or before a date, grouped by assignee, most overdue first."""
    statement = (
        select(Task)
        .where(
            Task.status == TaskStatus.OPEN,
            col(Task.due_date).is_not(None),
            col(Task.due_date) <= on_or_before,
        )
        .order_by(col(Task.assignee), col(Task.due_date), col(Task.id))
    )
    return list(session.exec(statement))


def customer_names(*, session: Session, customer_ids: list[str]) -> dict[str, str]:
    """Display names (name, else email) of the customers that have one."""
    ids = sorted({customer_id for customer_id in customer_ids if customer_id})
    if not ids:
        return {}
    statement = select(Customer.id, Customer.name, Customer.email).where(col(Customer.id).in_(ids))
    return {cid: name or email for cid, name, email in session.exec(statement) if name or email}


def open_failed_payments(*, session: Session) -> dict[str, tuple[int, int]]:
    """Open invoices with at least one failed attempt: currency -> (count, amount remaining)."""
    statement = select(Invoice.currency, Invoice.amount_remaining).where(
        Invoice.status == "open", Invoice.attempt_count >= 1, col(Invoice.attempted).is_(True)
    )
    return _by_currency(session.exec(statement))


def recovered_payments(
    *, session: Session, start: datetime, end: datetime
) -> dict[str, tuple[int, int]]:
    """Invoices paid in [start, end) after a failed attempt: currency -> (count, amount paid)."""
    statement = select(Invoice.currency, Invoice.amount_paid).where(
        Invoice.status == "paid",
        Invoice.attempt_count > 1,
        col(Invoice.paid_at) >= start,
        col(Invoice.paid_at) < end,
    )
    return _by_currency(session.exec(statement))


def _by_currency(rows) -> dict[str, tuple[int, int]]:
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for currency, amount in rows:
        totals[currency][0] += 1
        totals[currency][1] += int(amount or 0)
    return {currency: (count, amount) for currency, (count, amount) in sorted(totals.items())}

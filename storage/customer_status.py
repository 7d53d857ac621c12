"""One word for where a customer stands with their payments (docs/customer-status.md).

The rules, first match wins:

1. `cancelled` if the customer is deleted in Stripe (deletion cancels every subscription and
   nothing can be collected any more; leftover rows under it are not news).
2. `overdue` if money is owed after a failure: a subscription `past_due` or `unpaid`, or an
   unpaid invoice (`open` or `uncollectible`, amount remaining > 0) that Stripe has tried to
   charge at least once, whose due date has passed, or that was marked uncollectible.
   This wins over every subscription state: a cancelled customer who still owes is overdue.
3. `current` if any subscription is `active` (a scheduled cancellation is still active; it
   is shown beside the subscription, not in the status).
4. `trialing` if any subscription is `trialing`.
5. `paused` if any subscription is `paused`.
6. `cancelled` if the customer had subscriptions and every one is `canceled` or
   `incomplete_expired`.
7. `none` otherwise: no subscriptions, or only `incomplete` ones (the first payment of an
   `incomplete` subscription that failed shows up as an overdue invoice under rule 2).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from enum import StrEnum

OVERDUE_SUBSCRIPTION = frozenset({"past_due", "unpaid"})
ENDED_SUBSCRIPTION = frozenset({"canceled", "incomplete_expired"})
UNPAID_INVOICE = frozenset({"open", "uncollectible"})


class CustomerStatus(StrEnum):
    CURRENT = "current"
    OVERDUE = "overdue"
    CANCELLED = "cancelled"
    TRIALING = "trialing"
    PAUSED = "paused"
    NONE = "none"


def invoice_is_overdue(
    *,
    status: str | None,
    amount_remaining: int,
    attempt_count: int,
    due_date: datetime | None,
    now: datetime,
) -> bool:
    """An unpaid invoice after a failure: a failed attempt, a passed due date, or written off."""
    if status not in UNPAID_INVOICE or amount_remaining <= 0:
        return False
    if status == "uncollectible" or attempt_count > 0:
        return True
    return due_date is not None and due_date < now


def derive_status(
    *, deleted: bool, subscription_statuses: Iterable[str], any_invoice_overdue: bool
) -> CustomerStatus:
    statuses = set(subscription_statuses)
    if deleted:
        return CustomerStatus.CANCELLED
    if any_invoice_overdue or statuses & OVERDUE_SUBSCRIPTION:
        return CustomerStatus.OVERDUE
    for state, status in (
        ("active", CustomerStatus.CURRENT),
        ("trialing", CustomerStatus.TRIALING),
        ("paused", CustomerStatus.PAUSED),
    ):
        if state in statuses:
            return status
    if statuses and statuses <= ENDED_SUBSCRIPTION:
        return CustomerStatus.CANCELLED
    return CustomerStatus.NONE

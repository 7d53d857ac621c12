"""Timeline lines for a subscription, read from how its stored row changed.

Comparing the row before and after (not `previous_attributes`) keeps the lines true when
events arrive out of order or when the object was read from the API: a cancellation is
written once, whichever event first showed it.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from handlers.stripe.convert import Source
from handlers.stripe.recording import add_entry, day, once_key, repeat_key
from storage.billing import Upserted
from storage.models import Subscription, SubscriptionItem
from storage.money import format_money

TRIAL_WILL_END = "customer.subscription.trial_will_end"


def record_subscription_timeline(
    session: Session, source: Source, result: Upserted[Subscription]
) -> None:
    row, previous = result.row, result.previous
    plan = describe_items(result.items)

    def add(kind: str, summary: str, key: str, occurred_at=None) -> None:
        add_entry(
            session, source, customer_id=row.customer_id, object_id=row.id,
            kind=kind, summary=summary, key=key, occurred_at=occurred_at,
        )  # fmt: skip

    if previous is None or source.event_type == "customer.subscription.created":
        add(
            "subscription_created",
            f"Subscribed to {plan}",
            once_key(row.id, "subscription_created"),
            row.created,
        )
        if row.status == "trialing" and row.trial_end is not None:
            summary = f"Trial of {plan} started, ends {day(row.trial_end)}"
            add("trial_started", summary, once_key(row.id, "trial_started"), row.trial_start)
    elif _signature(result.previous_items) != _signature(result.items):
        summary = f"Plan changed from {describe_items(result.previous_items)} to {plan}"
        add("plan_changed", summary, repeat_key(source, row.id, "plan_changed"))
    if row.status == "canceled" and (previous is None or previous.status != "canceled"):
        summary = f"Subscription to {plan} canceled{_reason(row)}"
        add(
            "subscription_canceled",
            summary,
            once_key(row.id, "subscription_canceled"),
            row.canceled_at,
        )
    elif row.status != "canceled":
        _record_scheduling(add, source, row, previous)
    if source.event_type == TRIAL_WILL_END and row.trial_end is not None:
        key = once_key(row.id, f"trial_ending:{int(row.trial_end.timestamp())}")
        add("trial_ending", f"Trial of {plan} ends {day(row.trial_end)}", key)


def _record_scheduling(
    add, source: Source, row: Subscription, previous: Subscription | None
) -> None:
    scheduled, was_scheduled = _scheduled(row), previous is not None and _scheduled(previous)
    if scheduled and not was_scheduled:
        when = row.cancel_at or row.current_period_end
        summary = f"Cancellation scheduled for {day(when)}{_reason(row)}"
        add("cancellation_scheduled", summary, repeat_key(source, row.id, "cancellation_scheduled"))
    elif was_scheduled and not scheduled:
        add(
            "cancellation_undone",
            "Scheduled cancellation undone",
            repeat_key(source, row.id, "cancellation_undone"),
        )


def _scheduled(subscription: Subscription) -> bool:
    return bool(subscription.cancel_at_period_end or subscription.cancel_at)


def _reason(subscription: Subscription) -> str:
    parts = [p for p in (subscription.cancellation_reason, subscription.cancellation_feedback) if p]
    return f" ({', '.join(p.replace('_', ' ') for p in parts)})" if parts else ""


def _signature(items: Sequence[SubscriptionItem]) -> list[tuple[str, int]]:
    return sorted((item.price_id or item.id, item.quantity) for item in items)


def describe_items(items: Sequence[SubscriptionItem]) -> str:
    """`Pro ($49.00/month)`, `3 × Seats ($10.00/month)`: what people call a plan."""
    if not items:
        return "no items"
    return ", ".join(_describe_item(item) for item in sorted(items, key=lambda i: i.id))


def _describe_item(item: SubscriptionItem) -> str:
    name = item.plan_name or item.price_id or "a plan"
    quantity = f"{item.quantity} × " if item.quantity != 1 and item.usage_type == "licensed" else ""
    every = item.interval if item.interval_count == 1 else f"{item.interval_count} {item.interval}s"
    if item.unit_amount is None:
        return f"{quantity}{name} (per {every})"
    return f"{quantity}{name} ({format_money(item.unit_amount, item.currency)}/{every})"

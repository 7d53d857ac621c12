"""Subscriptions and their items: every `customer.subscription.*` event.

The subscription row and its items are one version: the items are replaced only when the
row is, so an older event can never bring back old prices or quantities. The `Change`
carries the row and items as they were (`previous`, `previous_items`), the items as they
are now (`items`), and the exact MRR before and after (`mrr_before`, `mrr_after`, Decimal minor units), for alerts and the ledger.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from handlers.stripe import shapes
from handlers.stripe.convert import (
    ConversionError,
    Source,
    currency,
    decimal_text,
    expandable_id,
    expanded,
    flag,
    integer,
    optional_amount,
    require_id,
    text,
    timestamp,
)
from handlers.stripe.events import StripeEvent
from handlers.stripe.recording import change_for
from handlers.stripe.registry import Change, handles
from handlers.stripe.subscription_timeline import record_subscription_timeline
from storage.billing import upsert_subscription
from storage.mrr import subscription_mrr
from storage.versioning import Version

SUBSCRIPTION_EVENTS = (
    "customer.subscription.created",
    "customer.subscription.updated",
    "customer.subscription.deleted",
    "customer.subscription.paused",
    "customer.subscription.resumed",
    "customer.subscription.trial_will_end",
    "customer.subscription.pending_update_applied",
    "customer.subscription.pending_update_expired",
)


@handles(*SUBSCRIPTION_EVENTS)
def apply_subscription_event(session: Session, event: StripeEvent) -> list[Change]:
    return apply_subscription(session, event.object, Source.from_event(event))


def apply_subscription(session: Session, obj: dict[str, Any], source: Source) -> list[Change]:
    values, items = subscription_values(obj, source)
    version = Version(at=source.at, event_id=source.event_id, state=values["status"])
    result = upsert_subscription(session=session, values=values, items=items, version=version)
    row = result.row
    details: dict[str, object] = {}
    if result.applied:
        previous = result.previous
        details = {
            "previous_items": result.previous_items,
            "items": result.items,
            "mrr_before": subscription_mrr(previous, result.previous_items) if previous else None,
            "mrr_after": subscription_mrr(row, result.items),
        }
        record_subscription_timeline(session, source, result)
    return [change_for("subscription", result, source, customer_id=row.customer_id, **details)]


def subscription_values(
    obj: dict[str, Any], source: Source
) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """The subscription's columns and its items (None when the payload has no `items`)."""
    subscription_id = require_id(obj)
    customer_id = expandable_id(obj.get("customer"))
    status = (
        "canceled" if source.event_type == "customer.subscription.deleted" else obj.get("status")
    )
    if customer_id is None or not isinstance(status, str):
        raise ConversionError("subscription has no customer or no status")
    period = shapes.subscription_period(obj)
    fallback = obj.get("currency")
    items = (
        [item_values(item, period, fallback) for item in shapes.item_rows(obj)]
        if "items" in obj
        else None
    )
    if fallback is None and items:
        fallback = items[0]["currency"]
    cancellation = (
        obj.get("cancellation_details") if isinstance(obj.get("cancellation_details"), dict) else {}
    )
    values = {
        "id": subscription_id,
        "livemode": source.livemode_of(obj),
        "raw": obj,
        "customer_id": customer_id,
        "status": status,
        "currency": currency(fallback, field="subscription.currency"),
        "collection_method": text(obj.get("collection_method"), 32),
        "cancel_at_period_end": flag(obj.get("cancel_at_period_end")),
        "cancel_at": timestamp(obj.get("cancel_at")),
        "canceled_at": timestamp(obj.get("canceled_at")),
        "ended_at": timestamp(obj.get("ended_at")),
        "cancellation_reason": text(cancellation.get("reason"), 64),
        "cancellation_feedback": text(cancellation.get("feedback"), 64),
        "cancellation_comment": text(cancellation.get("comment"), 5000),
        "current_period_start": period[0],
        "current_period_end": period[1],
        "trial_start": timestamp(obj.get("trial_start")),
        "trial_end": timestamp(obj.get("trial_end")),
        "discounts": shapes.subscription_discounts(obj),
        "created": timestamp(obj.get("created")),
    }
    return values, items


def item_values(
    item: dict[str, Any], period: tuple[Any, Any], fallback_currency: Any
) -> dict[str, Any]:
    """One subscription item with its price: a `price` object, or a legacy `plan`."""
    item_id = require_id(item)
    price, legacy = shapes.item_pricing(item)
    if not price:
        raise ConversionError("subscription item has neither an expanded price nor a plan")
    price_id = expandable_id(item.get("price")) or expandable_id(item.get("plan"))
    if legacy:
        unit_amount, unit_decimal, recurring = (
            price.get("amount"),
            price.get("amount_decimal"),
            price,
        )
    else:
        unit_amount, unit_decimal = price.get("unit_amount"), price.get("unit_amount_decimal")
        recurring = price.get("recurring") if isinstance(price.get("recurring"), dict) else {}
    interval = recurring.get("interval")
    if not isinstance(interval, str):
        raise ConversionError("subscription item price has no recurring interval")
    product = expanded(price.get("product")) or {}
    start, end = shapes.item_period(item, period)
    tiers = price.get("tiers")
    return {
        "id": item_id,
        "price_id": price_id,
        "product_id": expandable_id(price.get("product")),
        "plan_name": text(price.get("nickname") or product.get("name") or price_id, 512),
        "currency": currency(price.get("currency") or fallback_currency, field="price.currency"),
        "unit_amount": optional_amount(unit_amount, field="price.unit_amount"),
        "unit_amount_decimal": decimal_text(unit_decimal),
        "billing_scheme": price.get("billing_scheme") or "per_unit",
        "tiers_mode": price.get("tiers_mode"),
        "tiers": tiers if isinstance(tiers, list) else None,
        "interval": interval,
        "interval_count": integer(recurring.get("interval_count"), 1),
        "usage_type": recurring.get("usage_type") or "licensed",
        "quantity": integer(item.get("quantity"), 1),
        "current_period_start": start,
        "current_period_end": end,
    }

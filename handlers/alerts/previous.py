"""What a subscription looked like before a `customer.subscription.updated` event.

Stripe puts the old values of changed fields in `data.previous_attributes`; an array that
changed at all (`items`) is given whole. This is the one place alerts read that dict; it
returns small typed values. Older API versions name the price `plan` and put `quantity`
on the subscription; both shapes are read here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from storage.types import from_unix

MISSING = object()


@dataclass(frozen=True, slots=True)
class OldItem:
    """A subscription item as it was; satisfies storage.mrr.PricedItem."""

    price_id: str | None
    plan_name: str | None
    unit_amount: int | None
    unit_amount_decimal: str | None
    billing_scheme: str
    tiers_mode: str | None
    tiers: list[dict[str, Any]] | None
    interval: str
    interval_count: int
    usage_type: str
    quantity: int


def status(previous: dict[str, Any] | None) -> str | None:
    value = (previous or {}).get("status")
    return value if isinstance(value, str) else None


def value(previous: dict[str, Any] | None, key: str) -> object:
    """The old value of `key`, or MISSING when it did not change."""
    return (previous or {}).get(key, MISSING)


def was_cancel_scheduled(previous: dict[str, Any] | None) -> bool | None:
    """Whether a cancellation was scheduled before; None when neither field changed."""
    at_period_end, cancel_at = value(previous, "cancel_at_period_end"), value(previous, "cancel_at")
    if at_period_end is MISSING and cancel_at is MISSING:
        return None
    return at_period_end is True or (cancel_at is not MISSING and cancel_at is not None)


def old_cancel_at(previous: dict[str, Any] | None) -> datetime | None:
    cancel_at = value(previous, "cancel_at")
    return from_unix(cancel_at) if isinstance(cancel_at, int) else None


def items_changed(previous: dict[str, Any] | None) -> bool:
    return any(value(previous, key) is not MISSING for key in ("items", "plan", "quantity"))


def old_items(previous: dict[str, Any] | None, current: Sequence[Any]) -> list[OldItem] | None:
    """The items before the change, or None when they cannot be known from the event."""
    items, plan, quantity = (
        value(previous, "items"),
        value(previous, "plan"),
        value(previous, "quantity"),
    )
    if isinstance(items, dict) and isinstance(items.get("data"), list):
        parsed = [_item(raw) for raw in items["data"] if isinstance(raw, dict)]
        return None if any(item is None for item in parsed) else parsed  # type: ignore[return-value]
    base = [_from_row(row) for row in current]
    if isinstance(plan, dict) and len(base) <= 1:
        old = _price(plan, quantity=base[0].quantity if base else 1)
        base = [old] if old else []
    if isinstance(quantity, int) and len(base) == 1:
        base = [replace(base[0], quantity=quantity)]
    return base if (plan is not MISSING or quantity is not MISSING) else None


def _item(raw: dict[str, Any]) -> OldItem | None:
    quantity = raw.get("quantity") if isinstance(raw.get("quantity"), int) else 1
    price = raw.get("price") if isinstance(raw.get("price"), dict) else raw.get("plan")
    return _price(price, quantity=quantity) if isinstance(price, dict) else None


def _price(price: dict[str, Any], *, quantity: int) -> OldItem | None:
    recurring = price.get("recurring") if isinstance(price.get("recurring"), dict) else price
    interval = recurring.get("interval")
    if not isinstance(interval, str):
        return None
    unit_amount = price.get("unit_amount", price.get("amount"))
    decimal = price.get("unit_amount_decimal", price.get("amount_decimal"))
    return OldItem(
        price_id=price.get("id") if isinstance(price.get("id"), str) else None,
        plan_name=price.get("nickname") if isinstance(price.get("nickname"), str) else None,
        unit_amount=unit_amount if isinstance(unit_amount, int) else None,
        unit_amount_decimal=str(decimal) if decimal is not None else None,
        billing_scheme=price.get("billing_scheme") or "per_unit",
        tiers_mode=price.get("tiers_mode"),
        tiers=price.get("tiers") if isinstance(price.get("tiers"), list) else None,
        interval=interval,
        interval_count=int(recurring.get("interval_count") or 1),
        usage_type=recurring.get("usage_type") or "licensed",
        quantity=quantity,
    )


def _from_row(row: Any) -> OldItem:
    return OldItem(
        price_id=row.price_id,
        plan_name=row.plan_name,
        unit_amount=row.unit_amount,
        unit_amount_decimal=row.unit_amount_decimal,
        billing_scheme=row.billing_scheme,
        tiers_mode=row.tiers_mode,
        tiers=row.tiers,
        interval=row.interval,
        interval_count=row.interval_count,
        usage_type=row.usage_type,
        quantity=row.quantity,
    )

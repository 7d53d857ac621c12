"""Subscriptions with their items and discounts."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tests.factories.common import DAY, NEW, T0, is_basil, new_id
from tests.factories.customers import plan


@dataclass
class Item:
    """One line of a subscription; keep it to send the same item id in later events."""

    price: dict[str, Any]
    quantity: int | None = 1
    id: str = field(default_factory=lambda: new_id("si"))
    price_as_id: bool = False


def item(
    price_obj: dict[str, Any],
    quantity: int | None = 1,
    *,
    id: str | None = None,
    price_as_id: bool = False,
) -> Item:
    return Item(price=price_obj, quantity=quantity, id=id or new_id("si"), price_as_id=price_as_id)


def discount(
    coupon_obj: dict[str, Any], *, api_version: str = NEW, customer: str, subscription: str | None,
    coupon_as_id: bool = False, id: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    value: Any = coupon_obj["id"] if coupon_as_id else coupon_obj
    obj = {
        "id": id or new_id("di"),
        "object": "discount",
        "checkout_session": None,
        "customer": customer,
        "end": None,
        "invoice": None,
        "invoice_item": None,
        "promotion_code": None,
        "start": T0,
        "subscription": subscription,
        "subscription_item": None,
    }
    if api_version >= "2025-09-30":
        obj["source"] = {"coupon": value, "type": "coupon"}
    else:
        obj["coupon"] = value
    return obj


def subscription(
    *,
    api_version: str = NEW,
    customer: str | dict,
    items: Sequence[Item],
    id: str | None = None,
    status: str = "active",
    currency: str | None = None,
    created: int = T0,
    current_period_start: int = T0,
    current_period_end: int = T0 + 31 * DAY,
    trial_start: int | None = None,
    trial_end: int | None = None,
    cancel_at_period_end: bool = False,
    cancel_at: int | None = None,
    canceled_at: int | None = None,
    ended_at: int | None = None,
    cancellation_details: dict[str, Any] | None = None,
    coupons: Sequence[dict[str, Any]] = (),
    discounts_as_ids: bool = False,
    livemode: bool = False,
) -> dict[str, Any]:
    sub_id = id or new_id("sub")
    customer_id = customer if isinstance(customer, str) else customer["id"]
    basil = is_basil(api_version)
    lines = [
        _item_payload(i, sub_id, basil, current_period_start, current_period_end) for i in items
    ]
    obj: dict[str, Any] = {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "billing_cycle_anchor": current_period_start,
        "cancel_at": cancel_at,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": canceled_at,
        "cancellation_details": cancellation_details
        or {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency or (items[0].price["currency"] if items else "usd"),
        "customer": customer,
        "days_until_due": None,
        "default_payment_method": None,
        "ended_at": ended_at,
        "items": {
            "object": "list",
            "data": lines,
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": livemode,
        "metadata": {},
        "pause_collection": None,
        "pending_update": None,
        "schedule": None,
        "start_date": created,
        "status": status,
        "trial_end": trial_end,
        "trial_start": trial_start,
    }
    discounts = [
        discount(c, api_version=api_version, customer=customer_id, subscription=sub_id)
        for c in coupons
    ]
    if basil:
        obj["discounts"] = [d["id"] for d in discounts] if discounts_as_ids else discounts
    else:
        obj["current_period_start"] = current_period_start
        obj["current_period_end"] = current_period_end
        obj["discount"] = discounts[0] if discounts else None
        obj["discounts"] = [d["id"] for d in discounts]
    return obj


def _item_payload(spec: Item, sub_id: str, basil: bool, start: int, end: int) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "id": spec.id,
        "object": "subscription_item",
        "created": T0,
        "discounts": [],
        "metadata": {},
        "plan": plan(spec.price),
        "price": spec.price["id"] if spec.price_as_id else copy.deepcopy(spec.price),
        "subscription": sub_id,
        "tax_rates": [],
    }
    if spec.quantity is not None:
        payload["quantity"] = spec.quantity
    if basil:
        payload["current_period_start"] = start
        payload["current_period_end"] = end
    return payload

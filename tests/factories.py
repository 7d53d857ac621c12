"""Stripe payloads of our own, shaped like Stripe's example objects, in either API shape.

Every factory takes `api_version`: `OLD` (2024-06-20, before 2025-03-31.basil) or `NEW`
(2026-07-29.dahlia) and produces what Stripe sends for that version:

- before basil: `subscription.current_period_*`, `subscription.discount` with `coupon`,
  `invoice.subscription` / `.payment_intent` / `.charge` / `.paid`, `charge.invoice`;
- basil on: `items.data[].current_period_*`, `discounts[]` with `source.coupon`,
  `invoice.parent.subscription_details`, `invoice.payments`, no `charge.invoice`.

Ids are unique per call unless given. Timestamps are Unix seconds.
"""

from __future__ import annotations

import copy
import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

OLD = "2024-06-20"
NEW = "2026-07-29.dahlia"
API_VERSIONS = (OLD, NEW)
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
_serial = itertools.count(1)


def new_id(prefix: str) -> str:
    return f"{prefix}_{next(_serial):05d}{uuid.uuid4().hex[:12]}"


def is_basil(api_version: str | None) -> bool:
    return api_version is not None and api_version >= "2025-03-31"


def customer(
    *,
    api_version: str = NEW,
    id: str | None = None,
    email: str | None = "ada@example.com",
    name: str | None = "Ada Lovelace",
    currency: str | None = "usd",
    created: int = T0,
    default_payment_method: str | dict | None = None,
    default_source: str | None = None,
    delinquent: bool = False,
    livemode: bool = False,
) -> dict[str, Any]:
    obj = {
        "id": id or new_id("cus"),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": currency,
        "default_source": default_source,
        "delinquent": delinquent,
        "description": None,
        "email": email,
        "invoice_prefix": "7FE1103",
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": default_payment_method,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": livemode,
        "metadata": {},
        "name": name,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    if not is_basil(api_version):
        obj["discount"] = None
    return obj


def product(*, id: str | None = None, name: str = "Pro") -> dict[str, Any]:
    return {"id": id or new_id("prod"), "object": "product", "active": True, "name": name, "created": T0}


def price(
    *,
    api_version: str = NEW,
    id: str | None = None,
    unit_amount: int | None = 2000,
    unit_amount_decimal: str | None = None,
    currency: str = "usd",
    interval: str = "month",
    interval_count: int = 1,
    usage_type: str = "licensed",
    nickname: str | None = None,
    product: str | dict | None = None,
    billing_scheme: str = "per_unit",
    tiers_mode: str | None = None,
    tiers: list[dict[str, Any]] | None = None,
    livemode: bool = False,
) -> dict[str, Any]:
    obj = {
        "id": id or new_id("price"),
        "object": "price",
        "active": True,
        "billing_scheme": billing_scheme,
        "created": T0,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": livemode,
        "lookup_key": None,
        "metadata": {},
        "nickname": nickname,
        "product": product if product is not None else new_id("prod"),
        "recurring": {
            "interval": interval,
            "interval_count": interval_count,
            "meter": None,
            "usage_type": usage_type,
            "trial_period_days": None,
        },
        "tax_behavior": "unspecified",
        "tiers_mode": tiers_mode,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount_decimal if unit_amount_decimal is not None else (
            str(unit_amount) if unit_amount is not None else None
        ),
    }
    if tiers is not None:
        obj["tiers"] = tiers  # only present when expanded
    return obj


def plan(price_obj: dict[str, Any]) -> dict[str, Any]:
    """The legacy `plan` Stripe still puts beside `price` on subscription items."""
    recurring = price_obj["recurring"]
    return {
        "id": price_obj["id"],
        "object": "plan",
        "active": True,
        "amount": price_obj["unit_amount"],
        "amount_decimal": price_obj["unit_amount_decimal"],
        "billing_scheme": price_obj["billing_scheme"],
        "created": price_obj["created"],
        "currency": price_obj["currency"],
        "interval": recurring["interval"],
        "interval_count": recurring["interval_count"],
        "livemode": price_obj["livemode"],
        "metadata": {},
        "meter": None,
        "nickname": price_obj["nickname"],
        "product": price_obj["product"],
        "tiers_mode": price_obj["tiers_mode"],
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": recurring["usage_type"],
    }


@dataclass
class Item:
    """One line of a subscription; keep it to send the same item id in later events."""

    price: dict[str, Any]
    quantity: int | None = 1
    id: str = field(default_factory=lambda: new_id("si"))
    price_as_id: bool = False


def item(price_obj: dict[str, Any], quantity: int | None = 1, *, id: str | None = None, price_as_id: bool = False) -> Item:
    return Item(price=price_obj, quantity=quantity, id=id or new_id("si"), price_as_id=price_as_id)


def coupon(
    *,
    id: str | None = None,
    percent_off: float | None = None,
    amount_off: int | None = None,
    currency: str | None = None,
    duration: str = "forever",
) -> dict[str, Any]:
    return {
        "id": id or new_id("co").upper(),
        "object": "coupon",
        "amount_off": amount_off,
        "currency": currency,
        "duration": duration,
        "duration_in_months": 3 if duration == "repeating" else None,
        "percent_off": percent_off,
        "valid": True,
        "created": T0,
        "livemode": False,
        "metadata": {},
        "name": None,
    }


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
    lines = [_item_payload(i, sub_id, basil, current_period_start, current_period_end) for i in items]
    obj: dict[str, Any] = {
        "id": sub_id,
        "object": "subscription",
        "application": None,
        "billing_cycle_anchor": current_period_start,
        "cancel_at": cancel_at,
        "cancel_at_period_end": cancel_at_period_end,
        "canceled_at": canceled_at,
        "cancellation_details": cancellation_details or {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency or (items[0].price["currency"] if items else "usd"),
        "customer": customer,
        "days_until_due": None,
        "default_payment_method": None,
        "ended_at": ended_at,
        "items": {"object": "list", "data": lines, "has_more": False, "url": f"/v1/subscription_items?subscription={sub_id}"},
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
    discounts = [discount(c, api_version=api_version, customer=customer_id, subscription=sub_id) for c in coupons]
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


def invoice(
    *,
    api_version: str = NEW,
    customer: str | dict,
    subscription: str | None = None,
    id: str | None = None,
    status: str = "open",
    currency: str = "usd",
    amount_due: int = 2000,
    amount_paid: int = 0,
    amount_remaining: int | None = None,
    attempt_count: int = 0,
    next_payment_attempt: int | None = None,
    due_date: int | None = None,
    paid_at: int | None = None,
    payment_intent: str | dict | None = None,
    charge: str | dict | None = None,
    payments: Sequence[dict[str, Any]] | None = None,
    number: str | None = None,
    billing_reason: str | None = None,
    last_finalization_error: dict[str, Any] | None = None,
    created: int = T0,
    livemode: bool = False,
) -> dict[str, Any]:
    inv_id = id or new_id("in")
    obj: dict[str, Any] = {
        "id": inv_id,
        "object": "invoice",
        "account_country": "US",
        "amount_due": amount_due,
        "amount_paid": amount_paid,
        "amount_remaining": amount_due - amount_paid if amount_remaining is None else amount_remaining,
        "attempt_count": attempt_count,
        "attempted": attempt_count > 0,
        "auto_advance": status in ("draft", "open"),
        "billing_reason": billing_reason or ("subscription_cycle" if subscription else "manual"),
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency,
        "customer": customer,
        "customer_email": None,
        "discounts": [],
        "due_date": due_date,
        "hosted_invoice_url": None if status == "draft" else f"https://invoice.stripe.com/i/{inv_id}",
        "last_finalization_error": last_finalization_error,
        "lines": {"object": "list", "data": [], "has_more": False, "url": f"/v1/invoices/{inv_id}/lines"},
        "livemode": livemode,
        "metadata": {},
        "next_payment_attempt": next_payment_attempt,
        "number": number if number is not None or status == "draft" else f"INV-{next(_serial):04d}",
        "period_end": created,
        "period_start": created - 31 * DAY,
        "status": status,
        "status_transitions": {
            "finalized_at": None if status == "draft" else created,
            "marked_uncollectible_at": None,
            "paid_at": paid_at,
            "voided_at": None,
        },
        "subtotal": amount_due,
        "total": amount_due,
    }
    if is_basil(api_version):
        details = {"metadata": {}, "subscription": subscription}
        obj["parent"] = {"type": "subscription_details", "subscription_details": details} if subscription else None
        obj["amount_overpaid"] = 0
        if payments is not None:
            obj["payments"] = {"object": "list", "data": list(payments), "has_more": False,
                               "url": f"/v1/invoices/{inv_id}/payments"}  # fmt: skip
    else:
        obj.update(subscription=subscription, payment_intent=payment_intent, charge=charge, paid=status == "paid")
        obj["paid_out_of_band"] = False
    return obj


def invoice_payment(
    *,
    invoice: str,
    payment_intent: str | None = None,
    charge: str | None = None,
    amount_paid: int | None = 2000,
    currency: str = "usd",
    status: str = "paid",
    created: int = T0,
    id: str | None = None,
    livemode: bool = False,
) -> dict[str, Any]:
    """Basil's link between an invoice and what paid it."""
    payment: dict[str, Any] = {"type": "payment_intent" if payment_intent else "charge"}
    if payment_intent:
        payment["payment_intent"] = payment_intent
    else:
        payment["charge"] = charge
    return {
        "id": id or new_id("inpay"),
        "object": "invoice_payment",
        "amount_paid": amount_paid if status == "paid" else None,
        "amount_requested": amount_paid,
        "created": created,
        "currency": currency,
        "invoice": invoice,
        "is_default": True,
        "livemode": livemode,
        "payment": payment,
        "status": status,
        "status_transitions": {"canceled_at": None, "paid_at": created if status == "paid" else None},
    }


def charge(
    *,
    api_version: str = NEW,
    customer: str | dict | None,
    id: str | None = None,
    amount: int = 2000,
    currency: str = "usd",
    status: str = "succeeded",
    invoice: str | None = None,
    payment_intent: str | dict | None = None,
    amount_refunded: int = 0,
    failure_code: str | None = None,
    failure_message: str | None = None,
    captured: bool = True,
    created: int = T0,
    livemode: bool = False,
) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "id": id or new_id("ch"),
        "object": "charge",
        "amount": amount,
        "amount_captured": amount if captured and status == "succeeded" else 0,
        "amount_refunded": amount_refunded,
        "balance_transaction": None,
        "billing_details": {"email": None, "name": None, "phone": None, "address": None},
        "captured": captured and status == "succeeded",
        "created": created,
        "currency": currency,
        "customer": customer,
        "description": None,
        "disputed": False,
        "failure_code": failure_code,
        "failure_message": failure_message,
        "livemode": livemode,
        "metadata": {},
        "outcome": None,
        "paid": status == "succeeded",
        "payment_intent": payment_intent,
        "payment_method": "pm_card_visa",
        "receipt_url": None,
        "refunded": amount_refunded >= amount > 0,
        "status": status,
    }
    if not is_basil(api_version):
        obj["invoice"] = invoice
    return obj


def refund(
    *,
    charge: str,
    amount: int = 2000,
    currency: str = "usd",
    status: str = "succeeded",
    reason: str | None = None,
    payment_intent: str | None = None,
    id: str | None = None,
    created: int = T0,
    api_version: str = NEW,
) -> dict[str, Any]:
    obj = {
        "id": id or new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge,
        "created": created,
        "currency": currency,
        "metadata": {},
        "payment_intent": payment_intent,
        "reason": reason,
        "receipt_number": None,
        "status": status,
    }
    return obj


def event(
    type: str,
    obj: dict[str, Any],
    *,
    created: int,
    api_version: str | None,
    previous_attributes: dict[str, Any] | None = None,
    id: str | None = None,
    livemode: bool = False,
) -> dict[str, Any]:
    """A snapshot event envelope as Stripe sends it to a webhook endpoint."""
    data: dict[str, Any] = {"object": copy.deepcopy(obj)}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": id or new_id("evt"),
        "object": "event",
        "account": None,
        "api_version": api_version,
        "context": None,
        "created": created,
        "data": data,
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }

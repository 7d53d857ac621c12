"""Stripe objects made from our own generated data, shaped like Stripe's API (2025-03-31.basil+).

Keys follow `shared/reference/stripe/fixtures/*.json` (the fields billbot reads, plus the
envelope keys every object has), but every value here is chosen by the test, so the data is
business-consistent: periods in order, amounts that add up, ids that refer to each other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

EPOCH = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp())


def customer(
    n: int, *, created: int, email: str | None = None, name: str | None = None
) -> dict[str, Any]:
    return {
        "id": f"cus_{n:08d}",
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": "usd",
        "default_source": None,
        "delinquent": False,
        "description": None,
        "email": email if email is not None else f"buyer{n}@example.com",
        "invoice_settings": {"default_payment_method": None},
        "livemode": False,
        "metadata": {},
        "name": name if name is not None else f"Buyer {n}",
        "phone": None,
    }


def price(*, unit_amount: int, currency: str = "usd", interval: str = "month") -> dict[str, Any]:
    return {
        "id": f"price_{interval}_{unit_amount}_{currency}",
        "object": "price",
        "active": True,
        "billing_scheme": "per_unit",
        "created": EPOCH,
        "currency": currency,
        "livemode": False,
        "nickname": None,
        "product": "prod_billbot",
        "recurring": {
            "interval": interval,
            "interval_count": 1,
            "usage_type": "licensed",
            "meter": None,
        },
        "tiers_mode": None,
        "type": "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount),
    }


def subscription(
    n: int,
    *,
    customer_id: str,
    created: int,
    status: str = "active",
    unit_amount: int = 2000,
    currency: str = "usd",
    interval: str = "month",
    quantity: int = 1,
    canceled_at: int | None = None,
    trial_end: int | None = None,
) -> dict[str, Any]:
    sub_id = f"sub_{n:08d}"
    period_end = created + 30 * 86400
    item = {
        "id": f"si_{n:08d}",
        "object": "subscription_item",
        "created": created,
        "current_period_start": created,
        "current_period_end": period_end,
        "discounts": [],
        "metadata": {},
        "price": price(unit_amount=unit_amount, currency=currency, interval=interval),
        "quantity": quantity,
        "subscription": sub_id,
    }
    return {
        "id": sub_id,
        "object": "subscription",
        "billing_cycle_anchor": created,
        "cancel_at": None,
        "cancel_at_period_end": False,
        "canceled_at": canceled_at,
        "cancellation_details": {"comment": None, "feedback": None, "reason": None},
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency,
        "customer": customer_id,
        "discounts": [],
        "ended_at": canceled_at,
        "items": {
            "object": "list",
            "data": [item],
            "has_more": False,
            "url": f"/v1/subscription_items?subscription={sub_id}",
        },
        "latest_invoice": None,
        "livemode": False,
        "metadata": {},
        "start_date": created,
        "status": status,
        "trial_end": trial_end,
        "trial_start": created if trial_end else None,
    }


def invoice(
    n: int,
    *,
    customer_id: str,
    created: int,
    status: str = "paid",
    amount_due: int = 2000,
    currency: str = "usd",
    subscription_id: str | None = None,
) -> dict[str, Any]:
    paid = amount_due if status == "paid" else 0
    parent = None
    if subscription_id:
        parent = {
            "type": "subscription_details",
            "subscription_details": {"subscription": subscription_id},
        }
    return {
        "id": f"in_{n:08d}",
        "object": "invoice",
        "amount_due": amount_due,
        "amount_paid": paid,
        "amount_remaining": amount_due - paid,
        "attempt_count": 1 if status != "draft" else 0,
        "attempted": status != "draft",
        "billing_reason": "subscription_cycle" if subscription_id else "manual",
        "collection_method": "charge_automatically",
        "created": created,
        "currency": currency,
        "customer": customer_id,
        "due_date": None,
        "hosted_invoice_url": None,
        "livemode": False,
        "next_payment_attempt": None,
        "number": f"BB-{n:04d}",
        "parent": parent,
        "period_start": created,
        "period_end": created,
        "status": status,
        "status_transitions": {"paid_at": created if status == "paid" else None},
        "total": amount_due,
    }


def charge(
    n: int, *, customer_id: str, created: int, amount: int = 2000, refunded: int = 0
) -> dict[str, Any]:
    return {
        "id": f"ch_{n:08d}",
        "object": "charge",
        "amount": amount,
        "amount_captured": amount,
        "amount_refunded": refunded,
        "captured": True,
        "created": created,
        "currency": "usd",
        "customer": customer_id,
        "failure_code": None,
        "failure_message": None,
        "livemode": False,
        "paid": True,
        "payment_intent": f"pi_{n:08d}",
        "refunded": refunded == amount,
        "status": "succeeded",
    }


def refund(n: int, *, charge_id: str, created: int, amount: int = 500) -> dict[str, Any]:
    return {
        "id": f"re_{n:08d}",
        "object": "refund",
        "amount": amount,
        "charge": charge_id,
        "created": created,
        "currency": "usd",
        "payment_intent": None,
        "reason": "requested_by_customer",
        "status": "succeeded",
    }


def event(n: int, *, type: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return {
        "id": f"evt_{n:08d}",
        "object": "event",
        "api_version": "2025-03-31.basil",
        "created": created,
        "data": {"object": obj, "previous_attributes": None},
        "livemode": False,
        "pending_webhooks": 0,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }

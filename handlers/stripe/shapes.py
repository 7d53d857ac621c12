"""The one place that knows where Stripe API versions put things.

Stripe renders every event in the webhook endpoint's API version, so billbot receives both
shapes and must turn them into the same rows:

| What                    | before 2025-03-31 (e.g. 2024-06-20)     | 2025-03-31.basil and later                        |
|-------------------------|-----------------------------------------|---------------------------------------------------|
| invoice → subscription  | `invoice.subscription`                  | `invoice.parent.subscription_details.subscription` |
| invoice → payment       | `invoice.payment_intent`, `.charge`     | `invoice.payments` (InvoicePayment objects) and   |
|                         |                                         | the `invoice_payment.paid` event                  |
| charge → invoice        | `charge.invoice`                        | only through InvoicePayment                       |
| subscription period     | `subscription.current_period_*`         | `items.data[].current_period_*` (earliest end)    |
| subscription discounts  | `subscription.discount` (+ ids in       | `subscription.discounts[]`, coupon under          |
|                         | `discounts[]`), `discount.coupon`       | `discount.source.coupon` (2025-09-30 on)          |

The shape is read from which keys are present and filled, never from the version string:
objects fetched from the API carry no version, and Stripe's own example objects keep some
stale keys (`invoice.subscription: null` beside `parent`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers.stripe.convert import decimal_text, expandable_id, expanded, integer, timestamp


@dataclass(frozen=True, slots=True)
class PaymentLink:
    payment_intent_id: str | None
    charge_id: str | None


def _dig(obj: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(key)
    return obj


def invoice_subscription_id(invoice: dict[str, Any]) -> str | None:
    return expandable_id(invoice.get("subscription")) or expandable_id(
        _dig(invoice, "parent", "subscription_details", "subscription")
    )


def invoice_payment_link(invoice: dict[str, Any]) -> PaymentLink | None:
    """How the invoice was paid, or None when this payload does not say (basil without
    expanded `payments`: the link then comes from `invoice_payment.paid`)."""
    if "payment_intent" in invoice or "charge" in invoice:
        return PaymentLink(
            payment_intent_id=expandable_id(invoice.get("payment_intent")),
            charge_id=expandable_id(invoice.get("charge")),
        )
    payments = invoice_payments(invoice)
    if not payments:
        return None
    chosen = next((p for p in payments if p.get("status") == "paid"), None)
    chosen = chosen or next((p for p in payments if p.get("is_default")), payments[0])
    return invoice_payment_target(chosen)


def invoice_payments(invoice: dict[str, Any]) -> list[dict[str, Any]]:
    """The expanded InvoicePayment objects of a basil invoice (empty when not expanded)."""
    data = _dig(invoice, "payments", "data")
    if not isinstance(data, list):
        return []
    return [p for p in data if isinstance(p, dict) and p.get("object") == "invoice_payment"]


def invoice_payment_target(payment: dict[str, Any]) -> PaymentLink:
    """What an InvoicePayment paid with: `payment.{type, payment_intent | charge}`."""
    inner = payment.get("payment") if isinstance(payment.get("payment"), dict) else {}
    return PaymentLink(
        payment_intent_id=expandable_id(inner.get("payment_intent")),
        charge_id=expandable_id(inner.get("charge")),
    )


def charge_invoice(charge: dict[str, Any]) -> tuple[bool, str | None]:
    """(known, invoice id): before basil the charge names its invoice (or null for one-off
    charges); from basil on it does not, and the link comes from InvoicePayment rows."""
    if "invoice" in charge:
        return True, expandable_id(charge.get("invoice"))
    return False, None


def item_rows(subscription: dict[str, Any]) -> list[dict[str, Any]]:
    data = _dig(subscription, "items", "data")
    return [item for item in data if isinstance(item, dict)] if isinstance(data, list) else []


def subscription_period(subscription: dict[str, Any]) -> tuple[datetime | None, datetime | None]:
    """The subscription's current period: its own fields before basil; from basil on, the
    period of the item that renews first (the earliest `current_period_end`)."""
    end = timestamp(subscription.get("current_period_end"))
    if end is not None:
        return timestamp(subscription.get("current_period_start")), end
    periods = [item_period(item, None) for item in item_rows(subscription)]
    periods = [(start, end) for start, end in periods if end is not None]
    if not periods:
        return None, None
    return min(periods, key=lambda period: period[1])


def item_period(
    item: dict[str, Any], subscription_period: tuple[datetime | None, datetime | None] | None
) -> tuple[datetime | None, datetime | None]:
    """An item's period: its own (basil on), else its subscription's (before basil)."""
    end = timestamp(item.get("current_period_end"))
    if end is not None or subscription_period is None:
        return timestamp(item.get("current_period_start")), end
    return subscription_period


def subscription_discounts(subscription: dict[str, Any]) -> list[dict[str, Any]]:
    """Every discount on the subscription as {id, coupon, duration, percent_off (text),
    amount_off, currency}. Unexpanded discount ids give what is known (the id only)."""
    legacy = expanded(subscription.get("discount"))
    listed = subscription.get("discounts")
    entries: list[Any] = list(listed) if isinstance(listed, list) else []
    if legacy is not None and not any(expandable_id(e) == legacy.get("id") for e in entries):
        entries.insert(0, legacy)
    result = []
    for entry in entries:
        # Before basil `discounts[]` holds ids and `discount` the expanded one.
        if isinstance(entry, str) and legacy is not None and legacy.get("id") == entry:
            entry = legacy
        result.append(_discount(entry))
    return result


def _discount(entry: Any) -> dict[str, Any]:
    discount = expanded(entry) or {}
    coupon_value = discount.get("coupon")
    if coupon_value is None:
        coupon_value = _dig(discount, "source", "coupon")
    coupon = expanded(coupon_value) or {}
    amount_off = coupon.get("amount_off")
    return {
        "id": expandable_id(entry),
        "coupon": expandable_id(coupon_value),
        "duration": coupon.get("duration"),
        "percent_off": decimal_text(coupon.get("percent_off")),
        "amount_off": integer(amount_off, 0) if amount_off is not None else None,
        "currency": coupon["currency"].lower() if isinstance(coupon.get("currency"), str) else None,
    }


def item_pricing(item: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The item's price object and whether it is a legacy `plan` (fields `amount`,
    `interval` at top level) rather than a `price` (`unit_amount`, `recurring`)."""
    price = expanded(item.get("price"))
    if price is not None:
        return price, False
    plan = expanded(item.get("plan"))
    if plan is not None:
        return plan, True
    return {}, False

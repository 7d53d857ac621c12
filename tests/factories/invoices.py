"""Invoices and (basil on) invoice payments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tests.factories.common import DAY, NEW, T0, is_basil, new_id, serial


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
        "amount_remaining": amount_due - amount_paid
        if amount_remaining is None
        else amount_remaining,
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
        "hosted_invoice_url": None
        if status == "draft"
        else f"https://invoice.stripe.com/i/{inv_id}",
        "last_finalization_error": last_finalization_error,
        "lines": {
            "object": "list",
            "data": [],
            "has_more": False,
            "url": f"/v1/invoices/{inv_id}/lines",
        },
        "livemode": livemode,
        "metadata": {},
        "next_payment_attempt": next_payment_attempt,
        "number": number if number is not None or status == "draft" else f"INV-{serial():04d}",
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
        obj["parent"] = (
            {"type": "subscription_details", "subscription_details": details}
            if subscription
            else None
        )
        obj["amount_overpaid"] = 0
        if payments is not None:
            obj["payments"] = {"object": "list", "data": list(payments), "has_more": False,
                               "url": f"/v1/invoices/{inv_id}/payments"}  # fmt: skip
    else:
        obj.update(
            subscription=subscription,
            payment_intent=payment_intent,
            charge=charge,
            paid=status == "paid",
        )
        obj["paid_out_of_band"] = False
    return obj


def invoice_payment(
    *,
    api_version: str = NEW,
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
    """Basil's link between an invoice and what paid it (it does not exist before basil)."""
    if not is_basil(api_version):
        raise ValueError(f"invoice payments do not exist in API version {api_version}")
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
        "status_transitions": {
            "canceled_at": None,
            "paid_at": created if status == "paid" else None,
        },
    }

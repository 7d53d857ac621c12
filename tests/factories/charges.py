"""Charges and refunds."""

from __future__ import annotations

from typing import Any

from tests.factories.common import NEW, T0, is_basil, new_id


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

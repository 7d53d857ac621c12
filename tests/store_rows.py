"""Store rows for tests that read the store: Customer, Subscription (+ items), Invoice,
Charge, Refund, with sensible defaults. Each builder adds the row to the session and
returns it; ids are unique unless given."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from storage.lookup import normalize_email, normalize_name
from storage.models import (
    Charge,
    Customer,
    Invoice,
    InvoicePayment,
    Refund,
    Subscription,
    SubscriptionItem,
)

T0 = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
_counter = itertools.count(1)


def _id(prefix: str) -> str:
    return f"{prefix}_test{next(_counter):08d}"


def _versioned(fields: dict[str, Any], at: datetime) -> dict[str, Any]:
    fields.setdefault("version_at", at)
    fields.setdefault("updated_at", fields["version_at"])
    return fields


def customer(session: Session, *, id: str | None = None, email: str | None = "jane@example.com",
             name: str | None = "Jane Doe", at: datetime = T0, **fields: Any) -> Customer:  # fmt: skip
    row = Customer(
        id=id or _id("cus"), email=email, email_normalized=normalize_email(email), name=name,
        name_normalized=normalize_name(name), created=fields.pop("created", at - timedelta(days=100)),
        **_versioned(fields, at),
    )  # fmt: skip
    session.add(row)
    return row


def subscription(session: Session, *, customer_id: str, status: str = "active", currency: str = "usd",
                 items: list[dict[str, Any]] | None = None, at: datetime = T0, id: str | None = None,
                 **fields: Any) -> Subscription:  # fmt: skip
    """`items`: dicts of SubscriptionItem fields; default one monthly $10.00 item."""
    row = Subscription(
        id=id or _id("sub"), customer_id=customer_id, status=status, currency=currency,
        created=fields.pop("created", at - timedelta(days=50)),
        current_period_end=fields.pop("current_period_end", at + timedelta(days=20)),
        **_versioned(fields, at),
    )  # fmt: skip
    session.add(row)
    for spec in items if items is not None else [{}]:
        spec = {"unit_amount": 1000, "interval": "month", "plan_name": "Basic", **spec}
        session.add(SubscriptionItem(id=spec.pop("id", None) or _id("si"), subscription_id=row.id,
                                     currency=spec.pop("currency", currency), **spec))  # fmt: skip
    return row


def invoice(session: Session, *, customer_id: str, status: str = "open", amount: int = 1000,
            currency: str = "usd", at: datetime = T0, id: str | None = None, **fields: Any) -> Invoice:  # fmt: skip
    paid = status == "paid"
    fields.setdefault("amount_paid", amount if paid else 0)
    fields.setdefault("amount_remaining", 0 if paid else amount)
    if paid:
        fields.setdefault("paid_at", at)
    row = Invoice(
        id=id or _id("in"), customer_id=customer_id, status=status, currency=currency, amount_due=amount,
        total=amount, created=fields.pop("created", at - timedelta(days=1)), **_versioned(fields, at),
    )  # fmt: skip
    session.add(row)
    return row


def charge(session: Session, *, customer_id: str, amount: int = 1000, currency: str = "usd",
           status: str = "succeeded", at: datetime = T0, id: str | None = None, **fields: Any) -> Charge:  # fmt: skip
    ok = status == "succeeded"
    fields.setdefault("amount_captured", amount if ok else 0)
    fields.setdefault("paid", ok)
    fields.setdefault("captured", ok)
    row = Charge(
        id=id or _id("ch"), customer_id=customer_id, status=status, currency=currency, amount=amount,
        created=fields.pop("created", at), **_versioned(fields, at),
    )  # fmt: skip
    session.add(row)
    return row


def refund(session: Session, *, charge_id: str, amount: int, currency: str = "usd", status: str = "succeeded",
           at: datetime = T0, id: str | None = None, **fields: Any) -> Refund:  # fmt: skip
    row = Refund(id=id or _id("re"), charge_id=charge_id, amount=amount, currency=currency, status=status,
                 created=fields.pop("created", at), **_versioned(fields, at))  # fmt: skip
    session.add(row)
    return row


def invoice_payment(session: Session, *, invoice_id: str, charge_id: str | None = None,
                    payment_intent_id: str | None = None, amount: int = 1000, currency: str = "usd",
                    at: datetime = T0) -> InvoicePayment:  # fmt: skip
    row = InvoicePayment(id=_id("inpay"), invoice_id=invoice_id, charge_id=charge_id,
                         payment_intent_id=payment_intent_id, status="paid", amount_paid=amount,
                         currency=currency, **_versioned({}, at))  # fmt: skip
    session.add(row)
    return row

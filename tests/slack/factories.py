"""Store rows and Stripe events for alert tests, written directly (no Stripe handlers needed)."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session, select

from bot.settings import Settings
from handlers.alerts import enqueue_alerts
from handlers.stripe.events import StripeEvent, parse_event
from handlers.stripe.registry import AppliedEvent, Change
from storage.db import read_scope, session_scope
from storage.models import (
    Alert,
    Charge,
    Customer,
    Invoice,
    OutboxMessage,
    Refund,
    Subscription,
    SubscriptionItem,
)

T0 = datetime(2026, 11, 27, 14, 0, tzinfo=UTC)
_ids = itertools.count(1)


def unix(moment: datetime) -> int:
    return int(moment.timestamp())


def add_customer(
    session: Session,
    id: str = "cus_acme",
    name: str | None = "Acme Inc",
    email: str | None = "billing@acme.test",
    **extra: Any,
) -> Customer:
    row = Customer(id=id, name=name, email=email, version_at=T0, **extra)
    session.add(row)
    return row


def add_subscription(
    session: Session,
    id: str = "sub_acme",
    customer_id: str = "cus_acme",
    status: str = "active",
    items: list[dict[str, Any]] | None = None,
    currency: str = "usd",
    **extra: Any,
) -> Subscription:
    row = Subscription(
        id=id, customer_id=customer_id, status=status, currency=currency, version_at=T0, **extra
    )
    session.merge(row)
    for old in session.exec(select(SubscriptionItem).where(SubscriptionItem.subscription_id == id)):
        session.delete(old)
    session.flush()
    for n, item in enumerate(
        items if items is not None else [{"plan_name": "Pro", "unit_amount": 4900}]
    ):
        values = {
            "id": f"si_{id}_{n}",
            "subscription_id": id,
            "currency": currency,
            "interval": "month",
            "price_id": f"price_{item.get('plan_name', 'x').lower()}",
            **item,
        }
        session.add(SubscriptionItem(**values))
    return row


def add_invoice(
    session: Session,
    id: str = "in_acme",
    customer_id: str = "cus_acme",
    status: str = "open",
    amount_due: int = 4900,
    currency: str = "usd",
    **extra: Any,
) -> Invoice:
    values = {
        "subscription_id": "sub_acme",
        "attempt_count": 1,
        "number": "ACME-0042",
        "hosted_invoice_url": f"https://invoice.stripe.com/i/{id}",
        "amount_remaining": amount_due,
        **extra,
    }
    row = Invoice(
        id=id,
        customer_id=customer_id,
        status=status,
        amount_due=amount_due,
        currency=currency,
        version_at=T0,
        **values,
    )
    session.merge(row)
    return row


def add_charge(
    session: Session,
    id: str = "ch_acme",
    customer_id: str = "cus_acme",
    status: str = "succeeded",
    amount: int = 4900,
    **extra: Any,
) -> Charge:
    row = Charge(
        id=id,
        customer_id=customer_id,
        status=status,
        currency=extra.pop("currency", "usd"),
        amount=amount,
        version_at=T0,
        **extra,
    )
    session.merge(row)
    return row


def add_refund(
    session: Session,
    id: str,
    charge_id: str = "ch_acme",
    amount: int = 1000,
    reason: str | None = "requested_by_customer",
    created: datetime = T0,
) -> Refund:
    row = Refund(
        id=id,
        charge_id=charge_id,
        customer_id="cus_acme",
        amount=amount,
        currency="usd",
        reason=reason,
        status="succeeded",
        version_at=created,
        created=created,
    )
    session.merge(row)
    return row


def event(
    type: str,
    obj: dict[str, Any],
    *,
    previous: dict[str, Any] | None = None,
    id: str | None = None,
    livemode: bool = False,
    created: datetime = T0,
) -> StripeEvent:
    data: dict[str, Any] = {"object": obj}
    if previous is not None:
        data["previous_attributes"] = previous
    return parse_event(
        {
            "id": id or f"evt_{next(_ids):06d}",
            "object": "event",
            "type": type,
            "created": unix(created),
            "livemode": livemode,
            "api_version": "2026-07-29.dahlia",
            "data": data,
        }
    )


def applied(
    stripe_event: StripeEvent, *, source: str = "webhook", applied_change: bool = True
) -> AppliedEvent:
    object_type = stripe_event.object.get("object", "unknown")
    change = Change(
        object_type=object_type,
        object_id=stripe_event.object["id"],
        customer_id=stripe_event.object.get("customer"),
        applied=applied_change,
    )
    return AppliedEvent(event=stripe_event, changes=[change], source=source)


def react(engine: Engine, settings: Settings, stripe_event: StripeEvent, **kwargs: Any) -> None:
    """Run the alert reaction the way the worker does: in one transaction."""
    with session_scope(engine) as session:
        enqueue_alerts(
            session,
            applied(stripe_event, **kwargs),
            settings,
            now=stripe_event.created + timedelta(seconds=1),
        )


def alerts(engine: Engine) -> list[Alert]:
    with read_scope(engine) as session:
        rows = list(session.exec(select(Alert).order_by(Alert.id)))
        session.expunge_all()  # keep the loaded values readable after the read-only scope rolls back
        return rows


def outbox_rows(engine: Engine) -> list[OutboxMessage]:
    with read_scope(engine) as session:
        rows = list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)))
        session.expunge_all()
        return rows


def failed_payment(
    engine: Engine, settings: Settings, n: int = 1, *, attempt: int = 1, created: datetime = T0
) -> StripeEvent:
    """Customer `cus_{n}` with invoice `in_{n}` failing its `attempt`-th payment; the alert reaction run."""
    with session_scope(engine) as session:
        if session.get(Customer, f"cus_{n}") is None:
            add_customer(session, id=f"cus_{n}", name=f"Customer {n}", email=f"c{n}@example.test")
            add_subscription(session, id=f"sub_{n}", customer_id=f"cus_{n}")
        add_invoice(
            session,
            id=f"in_{n}",
            customer_id=f"cus_{n}",
            subscription_id=f"sub_{n}",
            attempt_count=attempt,
            next_payment_attempt=created + timedelta(days=3),
            last_error_message="Card declined",
        )
    stripe_event = event(
        "invoice.payment_failed",
        {"id": f"in_{n}", "object": "invoice", "customer": f"cus_{n}"},
        created=created,
    )
    react(engine, settings, stripe_event)
    return stripe_event


def invoice_object(n: int) -> dict[str, Any]:
    return {"id": f"in_{n}", "object": "invoice", "customer": f"cus_{n}"}

"""Store rows for revenue tests, written the way the Stripe handlers write them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session, delete, select

from handlers.stripe.events import StripeEvent
from handlers.stripe.registry import AppliedEvent, Change
from storage.models.billing import Customer, Subscription, SubscriptionItem

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def item(
    unit_amount: int | None = None,
    *,
    interval: str = "month",
    interval_count: int = 1,
    quantity: int = 1,
    **fields: Any,
) -> dict[str, Any]:
    return {
        "unit_amount": unit_amount,
        "interval": interval,
        "interval_count": interval_count,
        "quantity": quantity,
        **fields,
    }


def put_customer(
    session: Session, customer_id: str, *, name: str | None = None, currency: str = "usd"
) -> None:
    session.merge(Customer(id=customer_id, name=name, currency=currency, version_at=T0))


def put_subscription(
    session: Session,
    sub_id: str,
    *,
    customer_id: str,
    items: list[dict[str, Any]],
    status: str = "active",
    currency: str = "usd",
    **fields: Any,
) -> Subscription:
    """Insert or replace a subscription and (wholesale) its items, as the handlers do."""
    if session.get(Customer, customer_id) is None:
        put_customer(session, customer_id, currency=currency)
    subscription = session.get(Subscription, sub_id)
    if subscription is None:
        subscription = Subscription(
            id=sub_id, customer_id=customer_id, status=status, currency=currency, version_at=T0
        )
    subscription.status = status
    for key, value in fields.items():
        setattr(subscription, key, value)
    session.add(subscription)
    session.exec(delete(SubscriptionItem).where(SubscriptionItem.subscription_id == sub_id))
    for index, spec in enumerate(items):
        session.add(
            SubscriptionItem(
                id=f"{sub_id}_si{index}", subscription_id=sub_id, currency=currency, **spec
            )
        )
    session.flush()
    return subscription


def update_subscription(session: Session, sub_id: str, **fields: Any) -> Subscription:
    subscription = session.get(Subscription, sub_id)
    assert subscription is not None
    for key, value in fields.items():
        setattr(subscription, key, value)
    session.add(subscription)
    session.flush()
    return subscription


def set_quantity(session: Session, sub_id: str, quantity: int) -> None:
    for row in session.exec(
        select(SubscriptionItem).where(SubscriptionItem.subscription_id == sub_id)
    ).all():
        row.quantity = quantity
        session.add(row)
    session.flush()


def applied(
    event_id: str, created: datetime, *changes: tuple[str, str, str | None], source: str = "webhook"
) -> AppliedEvent:
    """An AppliedEvent as the worker builds it: (object_type, object_id, customer_id) per change."""
    event = StripeEvent(
        id=event_id,
        type="customer.subscription.updated",
        created=created,
        livemode=False,
        api_version="2025-03-31.basil",
        object={},
    )
    return AppliedEvent(
        event=event,
        changes=[
            Change(object_type=t, object_id=o, customer_id=c, applied=True) for t, o, c in changes
        ],
        source=source,
    )

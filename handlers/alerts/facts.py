"""What an alert says, read from the store after an event was applied.

Each builder takes stored rows and returns `AlertFacts`; none of them looks at the raw
Stripe payload. MRR comes from `storage.mrr` (exact) and is rounded once here.

Rows are read as the worker's unit of work holds them (`storage/held_rows.py`: the rows it
read, locked or added, flushed or not), else without a flush: customers and subscriptions
with the batch's others (`storage/alert_reads.py`), invoices and charges through the
identity map or the database (new billing rows are always held, and a row changed in place
is the identity map's own object). The searches among charges, invoice payments and
refunds (`handlers/alerts/searches.py`) answer from the batch's memory when it can answer
exactly, else flush and query.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlmodel import Session, SQLModel

from handlers.alerts import searches
from handlers.alerts.searches import Failure
from handlers.slack.cards import AlertFacts
from handlers.stripe.contacts import invoice_contact
from storage import alert_reads, billing, held_rows
from storage.models.billing import (
    Charge,
    Customer,
    Invoice,
    Subscription,
    SubscriptionItem,
)
from storage.money import round_minor
from storage.mrr import subscription_mrr

INTERVAL_WORDS = {"month": "monthly", "year": "yearly", "week": "weekly", "day": "daily"}
RowT = TypeVar("RowT", bound=SQLModel)


def stored_row(session: Session, model: type[RowT], object_id: str) -> RowT | None:
    """The row as the unit of work holds it, else as stored; no flush, no lock. A row the
    unit of work knows is missing (it locked or read that id and found none, and has not
    created it since: `held_rows.known_row`) is not asked about again: an invoice's failed
    charge often is not stored yet, and that query was most of the reaction's cost."""
    row = held_rows.known_row(session, model, object_id)
    if row is not held_rows.UNKNOWN:
        return row  # type: ignore[return-value]
    with session.no_autoflush:
        return session.get(model, object_id)


def _customer(session: Session, customer_id: str) -> Any:
    """The customer as the unit of work holds it, else as stored (read with the batch's other
    customers: `storage/alert_reads.py`)."""
    held = held_rows.held_row(session, Customer, customer_id)
    return held if held is not None else alert_reads.customer(session, customer_id)


def _subscription(session: Session, subscription_id: str) -> tuple[Any, Sequence[Any]]:
    """The subscription and its items, as the unit of work holds them, else as stored."""
    held = held_rows.held_row(session, Subscription, subscription_id)
    if held is not None:
        return held, subscription_items(session, subscription_id)
    return (
        alert_reads.subscription(session, subscription_id),
        alert_reads.subscription_items(session, subscription_id),
    )


def customer_facts(session: Session, customer_id: str | None, *, livemode: bool) -> dict[str, Any]:
    facts: dict[str, Any] = {"customer_id": customer_id, "livemode": livemode}
    customer = _customer(session, customer_id) if customer_id else None
    if customer is not None:
        facts.update(
            customer_name=customer.name,
            customer_email=customer.email,
            has_payment_method=customer.has_payment_method,
        )
    return facts


def subscription_items(session: Session, subscription_id: str) -> list[SubscriptionItem]:
    """In id order; from the worker's unit of work when it holds them (no query, no flush).
    Items are only written with their subscription, which the unit of work then holds."""
    if held_rows.held_items(session, subscription_id) is not None:  # no query: no no_autoflush
        return billing.subscription_items(session=session, subscription_id=subscription_id)
    with session.no_autoflush:
        return billing.subscription_items(session=session, subscription_id=subscription_id)


def plan_label(items: Sequence[Any]) -> str | None:
    """`Pro (monthly)`, `Seats (monthly) × 12`; several items joined with commas."""
    parts = []
    for item in items:
        name = item.plan_name or item.price_id or "plan"
        every = INTERVAL_WORDS.get(item.interval, item.interval)
        if item.interval_count and item.interval_count > 1:
            every = f"every {item.interval_count} {item.interval}s"
        quantity = f" × {item.quantity}" if item.quantity and item.quantity != 1 else ""
        parts.append(f"{name} ({every}){quantity}")
    return ", ".join(parts) or None


def mrr_minor(subscription: Subscription, items: Sequence[Any], *, as_active: bool = False) -> int:
    """MRR in minor units; `as_active` gives what it is worth while paying (trials, churned)."""
    probe = _Probe(
        status="active" if as_active else subscription.status,
        discounts=list(subscription.discounts or []),
    )
    return round_minor(subscription_mrr(probe, items))


def items_mrr(items: Sequence[Any], discounts: list[dict[str, Any]]) -> int:
    """MRR of a set of items under a subscription's discounts (the items before a change)."""
    return round_minor(subscription_mrr(_Probe(status="active", discounts=discounts), items))


def subscription_facts(
    session: Session, subscription: Subscription, items: Sequence[Any], *, as_active: bool = False
) -> AlertFacts:
    facts = customer_facts(session, subscription.customer_id, livemode=subscription.livemode)
    facts.update(
        subscription_id=subscription.id,
        plan=plan_label(items),
        mrr_currency=subscription.currency,
        mrr=mrr_minor(subscription, items, as_active=as_active),
        cancel_at=subscription.cancel_at,
        ended_at=subscription.ended_at or subscription.canceled_at,
        trial_end=subscription.trial_end,
        cancellation_reason=subscription.cancellation_reason,
        cancellation_feedback=subscription.cancellation_feedback,
        cancellation_comment=subscription.cancellation_comment,
    )
    return AlertFacts(**facts)


def invoice_facts(session: Session, invoice: Invoice) -> AlertFacts:
    facts = customer_facts(session, invoice.customer_id, livemode=invoice.livemode)
    if not (facts.get("customer_name") or facts.get("customer_email")):  # a customer not stored
        facts["customer_name"], facts["customer_email"] = invoice_contact(invoice)
    facts.update(
        currency=invoice.currency,
        amount=invoice.amount_remaining or invoice.amount_due,
        invoice_id=invoice.id,
        invoice_number=invoice.number,
        hosted_invoice_url=invoice.hosted_invoice_url,
        attempt=invoice.attempt_count or None,
        next_retry_at=invoice.next_payment_attempt,
        decline_reason=decline_reason(session, invoice),
        paid_at=invoice.paid_at,
        one_off_invoice=invoice.subscription_id is None,
    )
    subscription, items = (
        _subscription(session, invoice.subscription_id) if invoice.subscription_id else (None, [])
    )
    if subscription is not None:
        facts.update(
            subscription_id=subscription.id,
            plan=plan_label(items),
            mrr_currency=subscription.currency,
            mrr=mrr_minor(subscription, items, as_active=subscription.status != "trialing"),
        )
    return AlertFacts(**facts)


def decline_reason(session: Session, invoice: Invoice) -> str | None:
    """The failed charge's message and code, else the invoice's own last error."""
    failure = _failed_charge(session, invoice)
    if failure is not None and (failure[0] or failure[1]):
        return _message_and_code(*failure)
    return _message_and_code(invoice.last_error_message, invoice.last_error_code)


def _message_and_code(message: str | None, code: str | None) -> str | None:
    return f"{message} ({code})" if message and code else (message or code)


def _failed_charge(session: Session, invoice: Invoice) -> Failure | None:
    """The invoice's own charge when it failed (a payload named it), else the search
    (`handlers/alerts/searches.py`)."""
    if invoice.charge_id:
        charge = stored_row(session, Charge, invoice.charge_id)
        if charge is not None and charge.status == "failed":
            return charge.failure_message, charge.failure_code
    return searches.failed_charge(session, invoice)


def refund_facts(session: Session, charge: Charge, *, refunded_now: int) -> AlertFacts:
    facts = customer_facts(session, charge.customer_id, livemode=charge.livemode)
    latest_reason = searches.latest_refund_reason(session, charge.id)
    facts.update(
        currency=charge.currency,
        amount=refunded_now,
        charge_id=charge.id,
        charge_amount=charge.amount,
        amount_refunded=charge.amount_refunded,
        refund_reason=latest_reason,
    )
    invoice = stored_row(session, Invoice, charge.invoice_id) if charge.invoice_id else None
    if invoice is not None:
        facts.update(
            invoice_id=invoice.id,
            invoice_number=invoice.number,
            hosted_invoice_url=invoice.hosted_invoice_url,
        )
    return AlertFacts(**facts)


class _Probe:
    """A stand-in subscription for storage.mrr: what the subscription is worth while it pays,
    so a scheduled cancellation (which zeroes MRR under the `request` churn policy) is ignored."""

    cancel_at_period_end = False
    cancel_at = None

    def __init__(self, *, status: str, discounts: list[dict[str, Any]]) -> None:
        self.status, self.discounts = status, discounts

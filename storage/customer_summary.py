"""What billbot knows about a customer, in one value: `billbot lookup` and `/paid` show it.

`lookup_customers` is the whole answer to a query: it finds at most `limit` customers and
loads their subscriptions, items, invoices and payments in bulk: a fixed handful of indexed
queries, never one per customer, built once at import (statement building is a large
part of a lookup's cost in SQLAlchemy).

Money is never converted between currencies. Each customer has a main currency, used for
the headline `mrr` and `lifetime_value`: the customer's own Stripe currency when it has any
MRR or payments in it (or when nothing has any), else the currency of their newest
subscription that counts for MRR, else of their last payment, else `default_currency`.
`mrr_by_currency` and `lifetime_value_by_currency` always list every currency with money in
it, so nothing is hidden. MRR is exact (Decimal) per subscription and summed exactly per
currency; each shown figure is rounded once, half-even, to minor units.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, bindparam, select
from sqlmodel import Session

from storage.customer_payments import Payment, payment_histories
from storage.customer_status import (
    UNPAID_INVOICE,
    CustomerStatus,
    derive_status,
    invoice_is_overdue,
)
from storage.lookup import DEFAULT_LIMIT, LookupQuery, find_customers, parse_query
from storage.lookup_suggestions import suggest_close_matches
from storage.models import Invoice, Subscription, SubscriptionItem
from storage.money import Money, round_minor
from storage.mrr import subscription_mrr

SUBSCRIPTION_ORDER = ("past_due", "unpaid", "active", "trialing", "paused", "incomplete")
IDS = bindparam("ids", expanding=True)
SUBSCRIPTIONS = select(*(c for c in Subscription.__table__.c if c.name != "raw")).where(
    Subscription.customer_id.in_(IDS)
)
ITEMS = (
    select(*SubscriptionItem.__table__.c)
    .where(SubscriptionItem.subscription_id.in_(IDS))
    .order_by(SubscriptionItem.id)
)
INVOICES = select(
    Invoice.id, Invoice.customer_id, Invoice.subscription_id, Invoice.status, Invoice.number, Invoice.currency,
    Invoice.amount_paid, Invoice.amount_remaining, Invoice.attempt_count, Invoice.next_payment_attempt,
    Invoice.due_date, Invoice.paid_at, Invoice.created, Invoice.charge_id, Invoice.payment_intent_id,
    Invoice.hosted_invoice_url, Invoice.updated_at, Invoice.version_at,
).where(Invoice.customer_id.in_(IDS))  # fmt: skip


@dataclass(frozen=True, slots=True)
class SubscriptionSummary:
    id: str
    status: str
    plan: str | None  # item plan names joined with " + "
    interval: str | None
    interval_count: int | None
    quantity: int  # licensed items' quantities added up
    currency: str
    mrr: Money
    mrr_exact: Decimal
    current_period_end: datetime | None
    trial_end: datetime | None
    cancel_at_period_end: bool
    cancel_at: datetime | None  # when a scheduled cancellation takes effect
    canceled_at: datetime | None
    ended_at: datetime | None
    created: datetime | None
    as_of: datetime | None = None  # last event or sync that wrote it (version_at/updated_at)


@dataclass(frozen=True, slots=True)
class OpenInvoice:
    id: str
    status: str
    number: str | None
    amount_remaining: Money
    attempt_count: int
    next_payment_attempt: datetime | None
    due_date: datetime | None
    overdue: bool
    subscription_id: str | None
    hosted_invoice_url: str | None
    as_of: datetime | None = None  # last event or sync that wrote it (version_at/updated_at)


@dataclass(frozen=True, slots=True)
class CustomerSummary:
    customer_id: str
    email: str | None
    name: str | None
    livemode: bool
    deleted: bool
    status: CustomerStatus
    currency: str  # the main currency (module docstring)
    mrr: Money
    mrr_by_currency: tuple[Money, ...]
    lifetime_value: Money
    lifetime_value_by_currency: tuple[Money, ...]
    subscriptions: tuple[SubscriptionSummary, ...]
    open_invoices: tuple[OpenInvoice, ...]
    last_payment: Payment | None
    next_payment_attempt: datetime | None
    # The newest updated_at/version_at of any of the customer's rows: when billbot last
    # heard about them, by event or by a backfill/reconcile read.
    as_of: datetime


@dataclass(frozen=True, slots=True)
class LookupAnswer:
    query: LookupQuery
    matches: list[CustomerSummary]
    total: int
    total_is_capped: bool
    suggestions: list[str]


def lookup_customers(
    *,
    session: Session,
    text: str,
    now: datetime,
    limit: int = DEFAULT_LIMIT,
    default_currency: str = "usd",
) -> LookupAnswer:
    """Raises `storage.lookup.InvalidQuery` for empty or garbled text."""
    query = parse_query(text)
    found = find_customers(session=session, query=query, limit=limit)
    summaries = summarize_customers(
        session=session, customers=found.customers, now=now, default_currency=default_currency
    )
    suggestions = [] if found.customers else suggest_close_matches(session=session, query=query)
    return LookupAnswer(query, summaries, found.total, found.total_is_capped, suggestions)


def summarize_customers(
    *, session: Session, customers: Sequence[Any], now: datetime, default_currency: str = "usd"
) -> list[CustomerSummary]:
    """`customers`: Customer rows (or `find_customers` rows). Four queries for any number."""
    ids = [customer.id for customer in customers]
    if not ids:
        return []
    subscriptions = _subscriptions(session, ids)
    invoices: dict[str, list[Row]] = defaultdict(list)
    for invoice in session.connection().execute(INVOICES, {"ids": ids}):
        invoices[invoice.customer_id].append(invoice)
    histories = payment_histories(
        session=session,
        customer_ids=ids,
        invoices=[inv for rows in invoices.values() for inv in rows],
    )
    summaries = []
    for customer in customers:
        subs, history, own = (
            subscriptions.get(customer.id, []),
            histories[customer.id],
            invoices.get(customer.id, []),
        )
        moments = [customer.updated_at, customer.version_at, history.freshest]
        moments += [
            moment
            for row in [*(sub for sub, _ in subs), *own]
            for moment in (row.updated_at, row.version_at)
        ]
        summaries.append(
            _summary(customer, subs, _open_invoices(own, now), history, default_currency, moments)
        )
    return summaries


def _summary(customer, subs, invoices, history, default_currency, moments) -> CustomerSummary:
    rows = sorted(
        (_subscription_summary(sub, items) for sub, items in subs), key=_subscription_rank
    )
    exact: dict[str, Decimal] = defaultdict(Decimal)
    for row in rows:
        exact[row.currency] += row.mrr_exact
    mrr = {currency: round_minor(amount) for currency, amount in exact.items() if amount > 0}
    ltv = {currency: amount for currency, amount in history.lifetime_value.items() if amount != 0}
    currency = _main_currency(
        customer.currency, rows, mrr, ltv, history.last_payment, default_currency
    )
    status = derive_status(
        deleted=customer.deleted,
        subscription_statuses=[row.status for row in rows],
        any_invoice_overdue=any(invoice.overdue for invoice in invoices),
    )
    attempts = [
        invoice.next_payment_attempt for invoice in invoices if invoice.next_payment_attempt
    ]
    return CustomerSummary(
        customer_id=customer.id, email=customer.email, name=customer.name, livemode=customer.livemode,
        deleted=customer.deleted, status=status, currency=currency,
        mrr=Money(mrr.get(currency, 0), currency), mrr_by_currency=_by_currency(mrr, currency),
        lifetime_value=Money(ltv.get(currency, 0), currency), lifetime_value_by_currency=_by_currency(ltv, currency),
        subscriptions=tuple(rows), open_invoices=tuple(invoices), last_payment=history.last_payment,
        next_payment_attempt=min(attempts, default=None), as_of=max(m for m in moments if m is not None),
    )  # fmt: skip


def _main_currency(own, rows, mrr, ltv, last_payment, default_currency) -> str:
    if own and (own in mrr or own in ltv or not (mrr or ltv)):
        return own
    counting = [row for row in rows if row.currency in mrr and row.mrr_exact > 0]
    if counting:
        return max(
            counting, key=lambda row: (row.created is not None, row.created or 0, row.id)
        ).currency
    if last_payment is not None:
        return last_payment.currency
    return own or default_currency


def _by_currency(amounts: dict[str, int], main: str) -> tuple[Money, ...]:
    ordered = sorted(amounts, key=lambda currency: (currency != main, currency))
    return tuple(Money(amounts[currency], currency) for currency in ordered)


def _subscription_rank(row: SubscriptionSummary):
    rank = (
        SUBSCRIPTION_ORDER.index(row.status)
        if row.status in SUBSCRIPTION_ORDER
        else len(SUBSCRIPTION_ORDER)
    )
    return (rank, -(row.created.timestamp() if row.created else 0), row.id)


def _subscription_summary(sub: Row, items: list[Row]) -> SubscriptionSummary:
    exact = subscription_mrr(sub, items)
    licensed = [item for item in items if item.usage_type == "licensed"] or items
    first = licensed[0] if licensed else None
    names = [item.plan_name or item.price_id for item in items if item.plan_name or item.price_id]
    ends = [item.current_period_end for item in items if item.current_period_end]
    return SubscriptionSummary(
        id=sub.id, status=sub.status, plan=" + ".join(names) or None,
        interval=first.interval if first else None, interval_count=first.interval_count if first else None,
        quantity=sum(item.quantity for item in licensed if item.usage_type == "licensed"),
        currency=sub.currency, mrr=Money(round_minor(exact), sub.currency), mrr_exact=exact,
        current_period_end=sub.current_period_end or min(ends, default=None), trial_end=sub.trial_end,
        cancel_at_period_end=sub.cancel_at_period_end,
        cancel_at=sub.cancel_at or (sub.current_period_end if sub.cancel_at_period_end else None),
        canceled_at=sub.canceled_at, ended_at=sub.ended_at, created=sub.created, as_of=_freshest(sub),
    )  # fmt: skip


def _freshest(row: Row) -> datetime | None:
    """When billbot last wrote the row: the event or read time (`version_at`) or the write."""
    moments = [m for m in (row.version_at, row.updated_at) if m is not None]
    return max(moments, default=None)


def _subscriptions(session: Session, ids: list[str]) -> dict[str, list[tuple[Row, list[Row]]]]:
    subs = session.connection().execute(SUBSCRIPTIONS, {"ids": ids}).all()
    items: dict[str, list[Row]] = defaultdict(list)
    if subs:
        for item in session.connection().execute(ITEMS, {"ids": [sub.id for sub in subs]}):
            items[item.subscription_id].append(item)
    grouped: dict[str, list[tuple[Row, list[Row]]]] = defaultdict(list)
    for sub in subs:
        grouped[sub.customer_id].append((sub, items.get(sub.id, [])))
    return grouped


def _open_invoices(invoices: list[Row], now: datetime) -> list[OpenInvoice]:
    unpaid = [inv for inv in invoices if inv.status in UNPAID_INVOICE and inv.amount_remaining > 0]
    unpaid.sort(
        key=lambda inv: (inv.due_date is None, inv.due_date or now, inv.created or now, inv.id)
    )
    return [
        OpenInvoice(
            id=inv.id, status=inv.status, number=inv.number, amount_remaining=Money(inv.amount_remaining, inv.currency),
            attempt_count=inv.attempt_count, next_payment_attempt=inv.next_payment_attempt, due_date=inv.due_date,
            overdue=invoice_is_overdue(
                status=inv.status, amount_remaining=inv.amount_remaining, attempt_count=inv.attempt_count,
                due_date=inv.due_date, now=now,
            ),
            subscription_id=inv.subscription_id, hosted_invoice_url=inv.hosted_invoice_url,
            as_of=_freshest(inv),
        )
        for inv in unpaid
    ]  # fmt: skip

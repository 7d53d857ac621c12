"""Customers and subscriptions the alert reaction reads but the unit of work does not hold,
read for the whole batch at once, as plain rows.

The worker's unit of work holds the billing rows its batch writes (`storage/held_rows.py`);
alerts also read rows the batch does not write: an invoice's customer, the subscription an
invoice bills. One query per alert for those was a good part of the reaction's cost. Here
a worker batch reads, with one query per table, the customers and subscriptions (with their
items) its events' invoices, subscriptions and charges name, before it applies them
(`read_ahead`); a miss reads those named by every invoice, subscription and charge the
session has. Either way they are remembered for the rest of the transaction (`session.info`).

Callers ask `held_rows` first and come here only for rows the unit of work does not hold.
Those copies stay exact for the transaction: customers, subscriptions and items are written
only by their upserts, which hold what they write. They are plain rows (attribute access
like the ORM objects, no identity map): reading them never loads a row unlocked that the
store might lock later in the batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Row, select
from sqlmodel import Session

from storage.id_lists import is_one_of, on_postgresql
from storage.models.billing import Charge, Customer, Invoice, Subscription, SubscriptionItem
from storage.transaction_memory import transaction_memory

CHUNK = 500  # ids per IN (...) list
_KNOWN = "alert_reads.known"
_CUSTOMER = Customer.__table__.c
_SUBSCRIPTION = Subscription.__table__.c
_ITEMS = SubscriptionItem.__table__
CUSTOMER_COLUMNS = (_CUSTOMER.id, _CUSTOMER.name, _CUSTOMER.email, _CUSTOMER.has_payment_method)
SUBSCRIPTION_COLUMNS = (
    _SUBSCRIPTION.id,
    _SUBSCRIPTION.currency,
    _SUBSCRIPTION.status,
    _SUBSCRIPTION.discounts,
)


def customer(session: Session, customer_id: str) -> Row[Any] | None:
    """`id`, `name`, `email`, `has_payment_method` of a stored customer; None if there is none."""
    known = _known(session)
    if customer_id not in known.customers:
        _read(session, known, customer_ids=[customer_id])
    return known.customers[customer_id]


def subscription(session: Session, subscription_id: str) -> Row[Any] | None:
    """`id`, `currency`, `status`, `discounts` of a stored subscription; None if there is none."""
    known = _known(session)
    if subscription_id not in known.subscriptions:
        _read(session, known, subscription_ids=[subscription_id])
    return known.subscriptions[subscription_id]


def subscription_items(session: Session, subscription_id: str) -> list[Row[Any]]:
    """A stored subscription's items in id order (all columns), as `billing.subscription_items`."""
    known = _known(session)
    if subscription_id not in known.subscriptions:
        _read(session, known, subscription_ids=[subscription_id])
    return list(known.items.get(subscription_id, []))


def read_ahead(
    session: Session, *, customer_ids: Iterable[str], subscription_ids: Iterable[str]
) -> None:
    """Read these customers and subscriptions (with items) now, with one query per table,
    for a worker batch whose events will ask about them (`storage.billing.prefetch_reads`)."""
    _fetch(session, _known(session), set(customer_ids), set(subscription_ids))


@dataclass(slots=True)
class _Known:
    transaction: object
    customers: dict[str, Row[Any] | None] = field(default_factory=dict)
    subscriptions: dict[str, Row[Any] | None] = field(default_factory=dict)
    items: dict[str, list[Row[Any]]] = field(default_factory=dict)


def _known(session: Session) -> _Known:
    return transaction_memory(session, _KNOWN, _Known)


def _read(
    session: Session,
    known: _Known,
    *,
    customer_ids: Iterable[str] = (),
    subscription_ids: Iterable[str] = (),
) -> None:
    """Read the asked-for customers (or subscriptions) and those the session's other billing
    rows name that are not known yet."""
    customers, subscriptions = set(customer_ids), set(subscription_ids)
    for row in [*session.identity_map.values(), *session.new]:
        if customers and isinstance(row, Invoice | Subscription | Charge) and row.customer_id:
            customers.add(row.customer_id)
        if subscriptions and isinstance(row, Invoice) and row.subscription_id:
            subscriptions.add(row.subscription_id)
    _fetch(session, known, customers, subscriptions)


def _fetch(session: Session, known: _Known, customers: set[str], subscriptions: set[str]) -> None:
    connection = session.connection()  # plain reads: nothing pending is flushed
    postgresql = on_postgresql(connection)
    for chunk in _chunks(sorted(customers - known.customers.keys())):
        query = select(*CUSTOMER_COLUMNS).where(_one_of(_CUSTOMER.id, chunk, postgresql))
        found = {row.id: row for row in connection.execute(query)}
        for customer_id in chunk:
            known.customers[customer_id] = found.get(customer_id)
    for chunk in _chunks(sorted(subscriptions - known.subscriptions.keys())):
        query = select(*SUBSCRIPTION_COLUMNS).where(_one_of(_SUBSCRIPTION.id, chunk, postgresql))
        found = {row.id: row for row in connection.execute(query)}
        items = select(_ITEMS).where(_one_of(_ITEMS.c.subscription_id, chunk, postgresql))
        for item in sorted(connection.execute(items), key=lambda item: item.id):
            known.items.setdefault(item.subscription_id, []).append(item)
        for subscription_id in chunk:
            known.subscriptions[subscription_id] = found.get(subscription_id)


def _one_of(column, ids: list[str], postgresql: bool):
    """`column IN ids`, one array parameter on PostgreSQL (storage/id_lists.py)."""
    return is_one_of(column, None, postgresql=postgresql, values=ids)


def _chunks(ids: list[str]) -> Iterable[list[str]]:
    for first in range(0, len(ids), CHUNK):
        yield ids[first : first + CHUNK]

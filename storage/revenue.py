"""Queries behind the revenue figures: the store's subscriptions, and the MRR ledger.

Ledger amounts are integers in ledger units (`storage.models.ledger.LEDGER_SCALE` per minor
unit). MRR at a moment is the sum of the ledger lines before it, so every figure for a
past period comes from the ledger alone and does not change when the store moves on.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import orjson
from sqlalchemy import (
    JSON,
    Select,
    String,
    bindparam,
    cast,
    exists,
    func,
    literal_column,
    null,
    union_all,
)
from sqlmodel import Session, col, select

from storage.id_lists import is_one_of, on_postgresql
from storage.models.billing import Customer, Subscription
from storage.models.ledger import CustomerMrr, MrrMovement, from_ledger_units
from storage.store_mrr import StoreMrr, customer_mrr_from_store  # noqa: F401 (callers import them from here)

IN_CHUNK = 500  # ids per IN (...) list: well inside SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True, slots=True)
class LedgerLine:
    """One ledger line with the customer's name for display (None when not in the store)."""

    id: int
    customer_id: str
    customer_name: str | None
    currency: str
    kind: str
    amount: int  # ledger units
    mrr_after: int  # ledger units
    occurred_at: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
class MrrHistoryEntry:
    """A customer's MRR in one currency from `since` on: "MRR $98 since Mar 3, was $49"."""

    since: datetime
    currency: str
    mrr: Decimal  # exact minor units after the change
    previous: Decimal  # exact minor units before it
    kind: str
    event_id: str


@dataclass(frozen=True, slots=True)
class LedgerFacts:
    """What the ledger must know about a customer before recording an event's movements."""

    # the customer's subscriptions in the database (and possibly some the unit of work
    # holds: storage/store_mrr.py checks every id against the held row or the stored one)
    subscription_ids: list[str]
    event_has_lines: bool  # the event already wrote ledger lines for the customer
    has_recorded_mrr: bool  # the customer has `customer_mrr` rows


def ledger_facts(session: Session, *, customer_id: str, event_id: str) -> LedgerFacts:
    """Read the facts with one statement (a UNION ALL of three indexed lookups): the ledger
    asks them for every subscription change the worker applies, and each statement costs
    more in SQLAlchemy and the driver than in the database. Pending changes are not flushed
    for this: the caller corrects for them (storage/store_mrr.py, storage/ledger_memory.py)."""
    parameters = {"customer_id": customer_id, "event_id": event_id}
    subscription_ids: list[str] = []
    facts: set[str] = set()
    for subscription_id, fact in session.connection().execute(_LEDGER_FACTS, parameters):
        if fact is None:
            subscription_ids.append(subscription_id)
        else:
            facts.add(fact)
    return LedgerFacts(subscription_ids, "line" in facts, "recorded" in facts)


def ledger_facts_of_many(
    session: Session, *, customer_ids: Iterable[str], event_ids: Iterable[str]
) -> tuple[dict[str, list[str]], set[tuple[str, str]]]:
    """`ledger_facts` for many customers and events at once, with two queries per chunk of
    customers: each customer's subscription ids in the database, and the (customer, event)
    pairs among them that have ledger lines. Pending changes are not flushed, as there.

    The events (a batch's thousand) go as one JSON text, not as an array or an IN list:
    each string of those costs several µs of Python in psycopg's array dumper, or in
    SQLAlchemy's IN-list expansion and SQLite's parser, which was most of this read. The
    database unpacks the text; the customers stay an array or a list, which the planner
    sizes to take the customer index."""
    ids = sorted(set(customer_ids))
    events = sorted(set(event_ids))
    events_json = orjson.dumps(events).decode()
    subscriptions: dict[str, list[str]] = {customer_id: [] for customer_id in ids}
    lines: set[tuple[str, str]] = set()
    connection = session.connection()
    postgresql = on_postgresql(connection)
    for first in range(0, len(ids), IN_CHUNK):
        chunk = ids[first : first + IN_CHUNK]
        for customer_id, subscription_id in connection.execute(
            _SUBSCRIPTIONS_OF_CUSTOMERS[postgresql], {"customer_ids": chunk}
        ):
            subscriptions[customer_id].append(subscription_id)
        if events:
            parameters = {"customer_ids": chunk, "event_ids": events_json}
            statement = _CUSTOMER_EVENTS_WITH_LINES[postgresql]
            lines.update((c, e) for c, e in connection.execute(statement, parameters))
    return subscriptions, lines


def lock_customers_mrr(
    session: Session, *, customer_ids: Iterable[str]
) -> dict[str, dict[str, CustomerMrr]]:
    """The ledger's last recorded MRR of these customers, per customer and currency ({} for
    a customer it has none of), locked until commit (PostgreSQL `FOR UPDATE`, in customer
    order so two workers lock in the same order; SQLite's write transactions are already
    exclusive). Pending changes are not flushed: only the ledger writes these rows, and it
    keeps the objects it read (storage/ledger_memory.py)."""
    ids = sorted(set(customer_ids))
    recorded: dict[str, dict[str, CustomerMrr]] = {customer_id: {} for customer_id in ids}
    statement = _LOCK_CUSTOMER_MRR[on_postgresql(session.connection())]
    for first in range(0, len(ids), IN_CHUNK):
        chunk = {"customer_ids": ids[first : first + IN_CHUNK]}
        for row in session.exec(statement, params=chunk):
            recorded[row.customer_id][row.currency] = row
    return recorded


def _json_strings(name: str, *, postgresql: bool) -> Select:
    """The strings of the JSON array bound as `name`, as rows of a subquery."""
    text = bindparam(name, type_=String())
    if postgresql:
        return select(func.json_array_elements_text(cast(text, JSON)))
    return select(literal_column("value")).select_from(func.json_each(text))


_MOVEMENT = MrrMovement.__table__
_CUSTOMER_MRR = CustomerMrr.__table__
_SUBSCRIPTION = Subscription.__table__
_LEDGER_FACTS = union_all(
    select(_SUBSCRIPTION.c.id, null()).where(
        _SUBSCRIPTION.c.customer_id == bindparam("customer_id")
    ),
    select(null(), literal_column("'line'")).where(
        exists().where(
            _MOVEMENT.c.customer_id == bindparam("customer_id"),
            _MOVEMENT.c.event_id == bindparam("event_id"),
        )
    ),
    select(null(), literal_column("'recorded'")).where(
        exists().where(_CUSTOMER_MRR.c.customer_id == bindparam("customer_id"))
    ),
)
_SUBSCRIPTIONS_OF_CUSTOMERS = {
    postgresql: select(_SUBSCRIPTION.c.customer_id, _SUBSCRIPTION.c.id).where(
        is_one_of(_SUBSCRIPTION.c.customer_id, "customer_ids", postgresql=postgresql)
    )
    for postgresql in (False, True)
}
_CUSTOMER_EVENTS_WITH_LINES = {
    postgresql: select(_MOVEMENT.c.customer_id, _MOVEMENT.c.event_id)
    .where(
        is_one_of(_MOVEMENT.c.customer_id, "customer_ids", postgresql=postgresql),
        _MOVEMENT.c.event_id.in_(_json_strings("event_ids", postgresql=postgresql)),
    )
    .distinct()
    for postgresql in (False, True)
}
_LOCK_CUSTOMER_MRR = {
    postgresql: select(CustomerMrr)
    .where(is_one_of(col(CustomerMrr.customer_id), "customer_ids", postgresql=postgresql))
    .order_by(col(CustomerMrr.customer_id), col(CustomerMrr.currency))
    .with_for_update()
    .execution_options(autoflush=False)
    for postgresql in (False, True)
}


def ledger_customer_ids(session: Session) -> list[str]:
    """Every customer the ledger should look at: those with subscriptions, and those it
    remembers (whose subscriptions may since have been removed)."""
    with_subscriptions = select(Subscription.customer_id).distinct()
    remembered = select(CustomerMrr.customer_id).distinct()
    ids = set(session.exec(with_subscriptions).all()) | set(session.exec(remembered).all())
    return sorted(ids)


def balances_at(
    session: Session, *, at: datetime, customer_ids: Iterable[str]
) -> dict[tuple[str, str], int]:
    """The named customers' MRR per currency in ledger units just before `at`; zeros left out."""
    balances: dict[tuple[str, str], int] = {}
    ids = sorted(set(customer_ids))
    for first in range(0, len(ids), IN_CHUNK):
        statement = (
            select(MrrMovement.customer_id, MrrMovement.currency, func.sum(MrrMovement.amount))
            .where(
                MrrMovement.occurred_at < at,
                col(MrrMovement.customer_id).in_(ids[first : first + IN_CHUNK]),
            )
            .group_by(MrrMovement.customer_id, MrrMovement.currency)
        )
        for customer, currency, total in session.exec(statement):
            if total:
                balances[(customer, currency)] = int(total)
    return balances


def mrr_by_currency_at(session: Session, *, at: datetime) -> dict[str, int]:
    """Total MRR per currency in ledger units just before `at`."""
    statement = (
        select(MrrMovement.currency, func.sum(MrrMovement.amount))
        .where(MrrMovement.occurred_at < at)
        .group_by(MrrMovement.currency)
    )
    return {currency: int(total) for currency, total in session.exec(statement) if total}


def mrr_change_by_currency(session: Session, *, start: datetime, end: datetime) -> dict[str, int]:
    """The net of the ledger lines with `start <= occurred_at < end`, per currency."""
    statement = (
        select(MrrMovement.currency, func.sum(MrrMovement.amount))
        .where(MrrMovement.occurred_at >= start, MrrMovement.occurred_at < end)
        .group_by(MrrMovement.currency)
    )
    return {currency: int(total) for currency, total in session.exec(statement) if total}


def active_customers_at(session: Session, *, at: datetime, currencies: Iterable[str]) -> int:
    """Customers with MRR > 0 in any of `currencies` just before `at`, counted in the database."""
    paying = (
        select(MrrMovement.customer_id)
        .where(MrrMovement.occurred_at < at, col(MrrMovement.currency).in_(list(currencies)))
        .group_by(MrrMovement.customer_id, MrrMovement.currency)
        .having(func.sum(MrrMovement.amount) > 0)
        .subquery()
    )
    return int(session.exec(select(func.count(func.distinct(paying.c.customer_id)))).one())


def ledger_lines_between(session: Session, *, start: datetime, end: datetime) -> list[LedgerLine]:
    """The ledger lines with `start <= occurred_at < end`, oldest first."""
    statement = (
        select(MrrMovement, Customer.name, Customer.email)
        .join(Customer, col(Customer.id) == col(MrrMovement.customer_id), isouter=True)
        .where(MrrMovement.occurred_at >= start, MrrMovement.occurred_at < end)
        .order_by(col(MrrMovement.occurred_at), col(MrrMovement.id))
    )
    return [
        LedgerLine(
            id=row.id or 0,
            customer_id=row.customer_id,
            customer_name=name or email,
            currency=row.currency,
            kind=row.kind,
            amount=row.amount,
            mrr_after=row.mrr_after,
            occurred_at=row.occurred_at,
            event_id=row.event_id,
        )
        for row, name, email in session.exec(statement)
    ]


def customer_mrr_history(session: Session, *, customer_id: str) -> list[MrrHistoryEntry]:
    """Every change of one customer's MRR, newest first. The first entry is "now":
    `f"MRR {entry.mrr} since {entry.since}, was {entry.previous}"`."""
    statement = (
        select(MrrMovement)
        .where(MrrMovement.customer_id == customer_id)
        .order_by(col(MrrMovement.occurred_at).desc(), col(MrrMovement.id).desc())
    )
    return [
        MrrHistoryEntry(
            since=row.occurred_at,
            currency=row.currency,
            mrr=from_ledger_units(row.mrr_after),
            previous=from_ledger_units(row.mrr_after - row.amount),
            kind=row.kind,
            event_id=row.event_id,
        )
        for row in session.exec(statement)
    ]


def current_customer_mrr(session: Session, *, customer_id: str) -> dict[str, Decimal]:
    """One customer's MRR per currency as the ledger last recorded it (exact minor units)."""
    rows = session.exec(select(CustomerMrr).where(CustomerMrr.customer_id == customer_id)).all()
    return {row.currency: from_ledger_units(row.mrr) for row in rows if row.mrr}


def current_mrr_by_currency(session: Session) -> dict[str, Decimal]:
    """Total MRR per currency now, from the per-customer snapshot (one small aggregate:
    cheap enough for the App Home headline)."""
    statement = select(CustomerMrr.currency, func.sum(CustomerMrr.mrr)).group_by(
        CustomerMrr.currency
    )
    return {
        currency: from_ledger_units(int(total))
        for currency, total in session.exec(statement)
        if total
    }


def current_active_customers(session: Session, *, currencies: list[str]) -> int:
    """Customers with MRR > 0 now in any of `currencies`, from the per-customer snapshot."""
    statement = select(func.count(func.distinct(CustomerMrr.customer_id))).where(
        CustomerMrr.mrr > 0, col(CustomerMrr.currency).in_(currencies)
    )
    return int(session.exec(statement).one())

"""Writing and reading billing rows, always through the version guard.

Every upsert reads the stored row once (`SELECT ... FOR UPDATE` on PostgreSQL, so two
workers cannot both decide on the same old version, and in a worker batch after an advisory
lock on the object's name, so they cannot both create it either; SQLite's `BEGIN IMMEDIATE`
already serialises writers) and writes the incoming values only when `should_replace` says the
incoming version is newer (see `storage/versioning.py`). Keys absent from `values` keep
their stored value: a payload that does not say something (a basil charge does not name its
invoice) never erases what another event taught us.

A subscription's items are replaced wholesale together with its row and never otherwise,
so the items always belong to the same version as the subscription.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import inspect
from sqlalchemy.orm.attributes import instance_state
from sqlmodel import Session, SQLModel, select

from storage import alert_reads, held_rows
from storage.models import (
    Charge,
    Customer,
    Invoice,
    InvoicePayment,
    Refund,
    Subscription,
    SubscriptionItem,
)
from storage.rows import RowSnapshot, add_new, assign, column_names, new_row, snapshot
from storage.types import utcnow
from storage.versioning import Version, should_replace

RowT = TypeVar("RowT", bound=SQLModel)
_MISSING = object()

KIND: dict[type[SQLModel], str] = {
    Customer: "customer",
    Subscription: "subscription",
    Invoice: "invoice",
    InvoicePayment: "invoice_payment",
    Charge: "charge",
    Refund: "refund",
}
MODELS: dict[str, type[SQLModel]] = {kind: model for model, kind in KIND.items()}
# Column names, read once at import (never per event).
COLUMNS: dict[type[SQLModel], tuple[str, ...]] = {
    model: column_names(model) for model in (*KIND, SubscriptionItem)
}
# What a row created from a deletion stub (`{"id", "object", "deleted": true}`) needs.
TOMBSTONE_DEFAULTS: dict[type[SQLModel], dict[str, Any]] = {Invoice: {"currency": ""}}


@dataclass(slots=True)
class Upserted(Generic[RowT]):
    row: RowT  # the stored row, whether or not this write was applied
    applied: bool
    # The row as it was (same attribute names, detached); None when new or not applied.
    previous: RowSnapshot | None = None
    reason: str | None = None  # why not applied: "duplicate" (same event) or "stale" (older)
    items: list[SubscriptionItem] = field(default_factory=list)  # subscriptions only
    previous_items: list[RowSnapshot] = field(default_factory=list)

    @property
    def created(self) -> bool:
        return self.applied and self.previous is None


def stored_version(row: SQLModel) -> Version:
    """The version a stored row holds, with its lifecycle state for same-second ties."""
    if isinstance(row, Customer):
        state, progress = ("deleted" if row.deleted else "active"), 0
    elif isinstance(row, Invoice):
        state, progress = row.status, row.attempt_count
    elif isinstance(row, Charge):
        state, progress = row.status, row.amount_refunded
    else:
        state, progress = getattr(row, "status", None), 0
    return Version(at=row.version_at, event_id=row.version_event_id, state=state, progress=progress)


def upsert_customer(
    *, session: Session, values: dict[str, Any], version: Version
) -> Upserted[Customer]:
    return _upsert(session, Customer, values, version)


def upsert_invoice(
    *, session: Session, values: dict[str, Any], version: Version
) -> Upserted[Invoice]:
    return _upsert(session, Invoice, values, version)


def upsert_invoice_payment(
    *, session: Session, values: dict[str, Any], version: Version
) -> Upserted[InvoicePayment]:
    return _upsert(session, InvoicePayment, values, version)


def upsert_charge(
    *, session: Session, values: dict[str, Any], version: Version
) -> Upserted[Charge]:
    return _upsert(session, Charge, values, version)


def upsert_refund(
    *, session: Session, values: dict[str, Any], version: Version
) -> Upserted[Refund]:
    return _upsert(session, Refund, values, version)


def upsert_subscription(
    *,
    session: Session,
    values: dict[str, Any],
    items: Sequence[dict[str, Any]] | None,
    version: Version,
) -> Upserted[Subscription]:
    """Write the subscription and, only if it was written, replace its items with `items`
    (None: the payload did not list them; keep the stored ones)."""
    result = _upsert(session, Subscription, values, version)
    if not result.applied:
        return result
    existing: dict[str, SubscriptionItem] = {}
    if result.previous is not None:
        existing = {item.id: item for item in held_rows.stored_items(session, result.row.id)}
        result.previous_items = [snapshot(item) for item in existing.values()]
    if items is None:
        result.items = list(existing.values())
        held_rows.hold_items(session, result.row.id, result.items)
        return result
    for item_values in items:
        item = existing.pop(item_values["id"], None)
        if item is None:
            item = new_row(SubscriptionItem, {**item_values, "subscription_id": result.row.id})
            add_new(session, item)
        else:
            _assign(item, item_values)
        result.items.append(item)
    for gone in existing.values():
        if inspect(gone).pending:  # added earlier in this unit of work, never written
            session.expunge(gone)
        else:
            session.delete(gone)
    held_rows.hold_items(session, result.row.id, result.items)
    return result


def subscription_items(*, session: Session, subscription_id: str) -> list[SubscriptionItem]:
    """A subscription's items in id order, as this unit of work holds them when it does."""
    items = held_rows.held_items(session, subscription_id)
    if items is None:
        query = select(SubscriptionItem).where(SubscriptionItem.subscription_id == subscription_id)
        items = list(session.exec(query))
    return sorted(items, key=lambda item: item.id)


def _upsert(
    session: Session, model: type[RowT], values: dict[str, Any], version: Version
) -> Upserted[RowT]:
    row = held_rows.locked_row(session, model, values["id"])
    if row is None:
        stamp = {"version_at": version.at, "version_event_id": version.event_id}
        row = new_row(model, {**TOMBSTONE_DEFAULTS.get(model, {}), **values, **stamp})
        add_new(session, row)
        held_rows.hold_row(session, row)
        return Upserted(row=row, applied=True)
    if not should_replace(KIND[model], stored_version(row), version):
        duplicate = version.event_id is not None and version.event_id == row.version_event_id
        return Upserted(row=row, applied=False, reason="duplicate" if duplicate else "stale")
    previous = snapshot(row)
    _assign(
        row,
        {
            **values,
            "version_at": version.at,
            "version_event_id": version.event_id,
            "updated_at": utcnow(),
        },
    )
    held_rows.note_row(session, row)
    return Upserted(row=row, applied=True, previous=previous)


def _assign(row: SQLModel, values: dict[str, Any]) -> None:
    """`rows.assign`, except on a row this unit of work added and has not written yet: its
    INSERT writes whatever its instance dict holds, so, as in `rows.new_row`, the changed
    values go straight into the dict, without the per-attribute history the ORM would record
    for an UPDATE. In a worker batch most objects are created and then changed by later
    events of the same batch (an invoice created, finalized, paid), so this is the usual case."""
    if instance_state(row).key is not None:  # stored (or flushed): the ORM must see the change
        assign(row, values)
        return
    current = row.__dict__
    for name, value in values.items():
        if current.get(name, _MISSING) != value:
            current[name] = value


# --- reading rows for an upsert, once per unit of work -------------------------------


def lock_objects(*, session: Session, objects: Iterable[tuple[str, str]]) -> None:
    """Read and lock, with one query per table, the rows a batch of events is about to
    upsert, named by (Stripe object type, id), and the items of the subscriptions among them;
    other object types are left alone.

    The worker calls this for a whole batch; each upsert then finds its row (or learns that
    there is none) without a query of its own (storage/held_rows.py). The rows are locked
    exactly as the upsert's own read would lock them, so the version guard decides on the
    same state either way. On PostgreSQL every object's name is locked first (an advisory
    lock until commit, `held_rows.lock_names`), so a concurrent worker about to insert the
    same new object waits for this transaction instead of colliding with it on the key."""
    wanted: dict[type[SQLModel], set[str]] = {}
    for kind, object_id in objects:
        model = MODELS.get(kind)
        if model is not None:
            wanted.setdefault(model, set()).add(object_id)
    held_rows.lock_names(
        session=session,
        names=[f"{KIND[model]}:{object_id}" for model, ids in wanted.items() for object_id in ids],
    )
    for model in KIND:  # a fixed table order, so two workers lock in the same order
        if model in wanted:
            held_rows.lock_rows(session=session, model=model, ids=wanted[model])
    stored = [
        i for i in wanted.get(Subscription, ()) if held_rows.locked_row(session, Subscription, i)
    ]
    held_rows.load_items(session, stored)


# --- rows a batch will read besides those it upserts, once per batch ------------------


@dataclass(slots=True)
class BatchReads:
    """What a batch's events will read besides the rows they upsert (see `prefetch_reads`)."""

    invoice_ids: set[str] = field(default_factory=set)  # invoices, and their payments
    charge_ids: set[str] = field(default_factory=set)  # charges, their refunds and payments
    payment_intent_ids: set[str] = field(default_factory=set)  # charges and payments
    customer_ids: set[str] = field(default_factory=set)  # their subscriptions and items
    charges_of_invoices: set[str] = field(default_factory=set)  # charges by invoice_id
    charges_of_customers: set[str] = field(default_factory=set)  # charges by customer_id
    facts_customer_ids: set[str] = field(default_factory=set)  # for alerts (alert_reads)
    facts_subscription_ids: set[str] = field(default_factory=set)  # for alerts, with items


def prefetch_reads(*, session: Session, keys: BatchReads) -> None:
    """Read, with one query per table and without locking, the rows the link lookups
    (`storage/links.py`) and `customer_subscriptions` will ask about for a batch of events,
    so that each is answered from the unit of work instead of a query (and the flush before
    it). A lookup the batch did not foresee still asks the database."""
    payments = held_rows.find_rows(
        session=session,
        model=InvoicePayment,
        where={
            "invoice_id": keys.invoice_ids,
            "charge_id": keys.charge_ids,
            "payment_intent_id": keys.payment_intent_ids,
        },
    )
    invoice_ids = keys.invoice_ids | {payment.invoice_id for payment in payments}
    invoices = held_rows.find_rows(session=session, model=Invoice, where={"id": invoice_ids})
    invoices += held_rows.rows_held(session, Invoice)
    held_rows.find_rows(
        session=session,
        model=Charge,
        where={
            "id": keys.charge_ids | {invoice.charge_id for invoice in invoices},
            "payment_intent_id": keys.payment_intent_ids
            | {payment.payment_intent_id for payment in payments},
            "invoice_id": keys.charges_of_invoices,
            "customer_id": keys.charges_of_customers,
        },
    )
    held_rows.find_rows(session=session, model=Refund, where={"charge_id": keys.charge_ids})
    subscriptions = held_rows.find_rows(
        session=session, model=Subscription, where={"customer_id": keys.customer_ids}
    )
    held_rows.load_items(session, [subscription.id for subscription in subscriptions])
    alert_reads.read_ahead(
        session, customer_ids=keys.facts_customer_ids, subscription_ids=keys.facts_subscription_ids
    )


def customer_subscriptions(
    *, session: Session, customer_id: str
) -> list[tuple[Subscription, list[SubscriptionItem]]]:
    """The customer's subscriptions with their items (both in id order), as this unit of
    work holds them, written or not: no flush and no query when the batch read them up front
    (`prefetch_reads`), else read after a flush."""
    subscriptions = held_rows.found_rows(session, Subscription, "customer_id", customer_id)
    if subscriptions is None:
        session.flush()
        query = select(Subscription).where(Subscription.customer_id == customer_id)
        subscriptions = list(session.exec(query))
    held_rows.load_items(session, [subscription.id for subscription in subscriptions])
    return [
        (subscription, subscription_items(session=session, subscription_id=subscription.id))
        for subscription in sorted(subscriptions, key=lambda row: row.id)
    ]


# --- queries --------------------------------------------------------------------------


def get_invoice(*, session: Session, invoice_id: str) -> Invoice | None:
    return held_rows.get_row(session, Invoice, invoice_id)


def get_customer(*, session: Session, customer_id: str) -> Customer | None:
    return session.get(Customer, customer_id)


def customers_by_email(
    *, session: Session, email: str, include_deleted: bool = False
) -> list[Customer]:
    """Every customer with this email, matched trimmed and case-insensitively. One email
    may belong to several Stripe customers: all are returned, never merged."""
    query = select(Customer).where(Customer.email_normalized == email.strip().lower())
    if not include_deleted:
        query = query.where(Customer.deleted.is_(False))
    return list(session.exec(query.order_by(Customer.created, Customer.id)))


def subscriptions_for_customer(*, session: Session, customer_id: str) -> list[Subscription]:
    query = select(Subscription).where(Subscription.customer_id == customer_id)
    return list(session.exec(query.order_by(Subscription.created, Subscription.id)))


def items_for_subscriptions(
    *, session: Session, subscription_ids: Sequence[str]
) -> dict[str, list[SubscriptionItem]]:
    result: dict[str, list[SubscriptionItem]] = {sub_id: [] for sub_id in subscription_ids}
    if not subscription_ids:
        return result
    query = select(SubscriptionItem).where(
        SubscriptionItem.subscription_id.in_(list(subscription_ids))
    )
    for item in session.exec(query.order_by(SubscriptionItem.id)):
        result[item.subscription_id].append(item)
    return result


def invoices_for_customer(
    *, session: Session, customer_id: str, statuses: Sequence[str] | None = None
) -> list[Invoice]:
    query = select(Invoice).where(Invoice.customer_id == customer_id)
    if statuses is not None:
        query = query.where(Invoice.status.in_(list(statuses)))
    return list(session.exec(query.order_by(Invoice.created, Invoice.id)))


def charges_for_customer(*, session: Session, customer_id: str) -> list[Charge]:
    query = select(Charge).where(Charge.customer_id == customer_id)
    return list(session.exec(query.order_by(Charge.created, Charge.id)))


def refunds_for_customer(*, session: Session, customer_id: str) -> list[Refund]:
    query = select(Refund).where(Refund.customer_id == customer_id)
    return list(session.exec(query.order_by(Refund.created, Refund.id)))

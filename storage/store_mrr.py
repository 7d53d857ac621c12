"""A customer's MRR as the store shows it inside one unit of work, without flushing it.

The MRR ledger asks this after every subscription change the worker applies. Flushing the
batch's pending rows and reading the customer's subscriptions and their items back (three
statements and a flush per change) was most of the ledger's cost, so the answer is
assembled from what the session already holds, and the database only fills in the rest:

- which subscriptions the customer has: their ids in the database (one small indexed query),
  corrected by the session's pending state (a new subscription, a changed `customer_id`);
- each subscription the session holds is read from its object (its pending changes
  included); one it does not hold is read from the database;
- items come from the store's memory of the unit of work (`held_rows.held_items`, exact for
  every subscription the worker upserts), else from the database corrected by the
  session's item objects (pending, changed or deleted ones).

So the figures are exactly those a flush followed by a fresh read would give, in the worker,
a backfill or a test alike; in the worker, where every changed subscription is held, a
change costs one query.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from storage.held_rows import held_items
from storage.models.billing import Subscription, SubscriptionItem
from storage.mrr import DEFAULT_POLICY, MrrPolicy, paused_mrr, subscription_mrr

ZERO = Decimal(0)
IN_CHUNK = 500  # ids per IN (...) list

_SUBSCRIPTION = Subscription.__table__
_ITEM = SubscriptionItem.__table__
_MRR_SUBSCRIPTION_COLUMNS = tuple(
    _SUBSCRIPTION.c[name]
    for name in ("id", "currency", "status", "discounts", "cancel_at_period_end", "cancel_at")
)
_MRR_ITEM_COLUMNS = tuple(
    _ITEM.c[name]
    for name in (
        "id", "subscription_id", "unit_amount", "unit_amount_decimal", "billing_scheme",
        "tiers_mode", "tiers", "interval", "interval_count", "usage_type", "quantity",
    )
)  # fmt: skip
_IDS_OF_CUSTOMER = select(_SUBSCRIPTION.c.id).where(
    _SUBSCRIPTION.c.customer_id == bindparam("customer_id")
)
_DELETED = object()


@dataclass(frozen=True, slots=True)
class StoreMrr:
    """A customer's MRR in one currency as the store shows it now (exact minor units)."""

    mrr: Decimal = ZERO
    paused: Decimal = ZERO


def customer_mrr_from_store(
    session: Session,
    *,
    customer_id: str,
    policy: MrrPolicy = DEFAULT_POLICY,
    stored_ids: Iterable[str] | None = None,
) -> dict[str, StoreMrr]:
    """Sum each of the customer's subscriptions' MRR (and paused value) per currency, as the
    session sees the store (pending changes included), without flushing. `stored_ids` are
    the customer's subscription ids in the database when the caller has just read them."""
    totals: dict[str, StoreMrr] = {}
    subscriptions = customer_subscriptions(session, customer_id=customer_id, stored_ids=stored_ids)
    for subscription, items in subscriptions:
        mrr = subscription_mrr(subscription, items, policy=policy)
        paused = paused_mrr(subscription, items, policy=policy)
        before = totals.get(subscription.currency, StoreMrr())
        totals[subscription.currency] = StoreMrr(before.mrr + mrr, before.paused + paused)
    return totals


def customer_subscriptions(
    session: Session, *, customer_id: str, stored_ids: Iterable[str] | None = None
) -> list[tuple[Any, list[Any]]]:
    """The customer's subscriptions with their items, each an ORM object when the session
    holds it (so its pending changes count) or a database row when it does not."""
    view = _SessionView(session)
    if stored_ids is None:
        parameters = {"customer_id": customer_id}
        stored_ids = session.connection().execute(_IDS_OF_CUSTOMER, parameters).scalars().all()
    subscriptions: list[Any] = []
    unheld: list[str] = []
    seen: set[str] = set()
    for sub_id in stored_ids:
        seen.add(sub_id)
        held = view.held(Subscription, sub_id)
        if held is None:
            unheld.append(sub_id)
        elif held is not _DELETED and held.customer_id == customer_id:
            subscriptions.append(held)
    subscriptions.extend(
        obj
        for obj in view.pending(Subscription)
        if obj.customer_id == customer_id and obj.id not in seen
    )
    if unheld:
        subscriptions.extend(_rows(session, _MRR_SUBSCRIPTION_COLUMNS, _SUBSCRIPTION.c.id, unheld))
    items: dict[str, list[Any]] = {}
    unknown: list[str] = []
    for subscription in subscriptions:
        known = held_items(session, subscription.id)
        if known is None:
            unknown.append(subscription.id)
        else:
            items[subscription.id] = known
    if unknown:
        items.update(_items_from_store(session, view, unknown))
    return [(subscription, items[subscription.id]) for subscription in subscriptions]


def _items_from_store(session: Session, view: _SessionView, sub_ids: list[str]) -> dict[str, list]:
    """Items of these subscriptions: the stored rows, each replaced by the session's object
    when it holds one, plus the session's pending and moved items."""
    wanted = set(sub_ids)
    found: dict[str, list[Any]] = defaultdict(list)
    seen: set[str] = set()
    for row in _rows(session, _MRR_ITEM_COLUMNS, _ITEM.c.subscription_id, sub_ids):
        seen.add(row.id)
        held = view.held(SubscriptionItem, row.id)
        if held is None:
            found[row.subscription_id].append(row)
        elif held is not _DELETED and held.subscription_id in wanted:
            found[held.subscription_id].append(held)
    for item in view.pending(SubscriptionItem):
        if item.subscription_id in wanted and item.id not in seen:
            found[item.subscription_id].append(item)
    return {sub_id: found[sub_id] for sub_id in sub_ids}


def _rows(session: Session, columns: tuple, key: Any, values: Iterable[str]) -> list[Any]:
    """Stored rows (these columns) whose `key` is one of `values`, unflushed."""
    values = sorted(set(values))
    connection = session.connection()
    rows: list[Any] = []
    for first in range(0, len(values), IN_CHUNK):
        chunk = values[first : first + IN_CHUNK]
        rows.extend(connection.execute(select(*columns).where(key.in_(chunk))))
    return rows


class _SessionView:
    """The session's own state of a few rows: held objects, pending and deleted ones."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._deleted: set[int] | None = None

    def held(self, model: type, object_id: str) -> Any:
        """The session's object for this row, `_DELETED` when it is to be deleted, or None
        when the session does not hold it (the database's row is current)."""
        obj = self.session.identity_map.get(self.session.identity_key(model, object_id))
        if obj is None:
            return None
        if self._deleted is None:
            self._deleted = {id(deleted) for deleted in self.session.deleted}
        return _DELETED if id(obj) in self._deleted else obj

    def pending(self, model: type) -> list[Any]:
        """Objects of `model` the database does not show as they are: new ones, and changed
        ones (whose key columns may have moved)."""
        new = [obj for obj in self.session.new if type(obj) is model]
        changed = [obj for obj in self.session.dirty if type(obj) is model]
        return new + changed

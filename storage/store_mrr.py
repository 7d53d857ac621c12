"""A customer's MRR as the store shows it inside one unit of work, without a flush per ask.

The MRR ledger asks this after every subscription change the worker applies. Flushing the
batch's pending rows and reading the customer's subscriptions and their items back (a flush
and two queries per change) was most of the ledger's cost. But the worker already holds the
rows that matter: every subscription a batch upserts is read and locked up front, with its
items, and kept in the store's memory of the unit of work (storage/held_rows.py), which
stays exact for the rest of the transaction. So:

- a subscription the store holds (locked by the batch or new in it, `held_rows.held_row`,
  with its items known) is read from its object and those items: nobody else can change
  it, and its pending changes are what a flush would write;
- any other subscription, and its items, is read from the database, so it is as fresh as a
  read after the lock the ledger took (storage/ledger_memory.py). That includes one the
  batch has only read, without a lock, for its lookups (a customer's other subscriptions,
  `billing.prefetch_reads`): another worker may have changed it and committed since.
- which subscriptions the customer has comes from the database (`stored_ids`, or one
  indexed query), plus the held ones that are new or have moved and are not flushed yet.
  `stored_ids` may name more (the ledger adds those the unit of work has given the customer,
  storage/ledger_memory.py): each id is checked against the held row, or the stored one.

Only a pending change to a subscription or item the store does not hold (a backfill, a test
writing rows by hand) would make the database's answer stale: then the session is flushed
first, as it always was. So the figures are exactly those of a flush followed by a fresh
read, and in the worker a change costs no query of its own.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from itertools import chain
from typing import Any

from sqlalchemy import bindparam, event, select
from sqlalchemy.orm import Session, attributes

from storage.held_rows import found_rows, held_items, held_row, held_subscription_ids
from storage.id_lists import is_one_of, on_postgresql
from storage.models.billing import Subscription, SubscriptionItem
from storage.mrr import DEFAULT_POLICY, MrrPolicy, paused_mrr, subscription_mrr

ZERO = Decimal(0)
IN_CHUNK = 500  # ids per IN (...) list

_SUBSCRIPTION = Subscription.__table__
_ITEM = SubscriptionItem.__table__
_MRR_SUBSCRIPTION_COLUMNS = tuple(
    _SUBSCRIPTION.c[name]
    for name in (
        "id",
        "customer_id",
        "currency",
        "status",
        "discounts",
        "cancel_at_period_end",
        "cancel_at",
    )  # fmt: skip
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
    stored_rows: dict[str, tuple[Any, list[Any]]] | None = None,
) -> dict[str, StoreMrr]:
    """Sum each of the customer's subscriptions' MRR (and paused value) per currency, as the
    session sees the store (pending changes included), without flushing. `stored_ids` are
    the customer's subscription ids in the database when the caller has just read them;
    `stored_rows` what `read_subscriptions` read for some of them after a lock that keeps
    them so (storage/ledger_memory.py)."""
    totals: dict[str, StoreMrr] = {}
    subscriptions = customer_subscriptions(
        session, customer_id=customer_id, stored_ids=stored_ids, stored_rows=stored_rows
    )
    for subscription, items in subscriptions:
        mrr = subscription_mrr(subscription, items, policy=policy)
        paused = paused_mrr(subscription, items, policy=policy)
        before = totals.get(subscription.currency, StoreMrr())
        totals[subscription.currency] = StoreMrr(before.mrr + mrr, before.paused + paused)
    return totals


def customer_subscriptions(
    session: Session,
    *,
    customer_id: str,
    stored_ids: Iterable[str] | None = None,
    stored_rows: dict[str, tuple[Any, list[Any]]] | None = None,
) -> list[tuple[Any, list[Any]]]:
    """The customer's subscriptions with their items: the store's held objects, database
    rows for the rest (see the module docstring). `stored_rows` (id -> the row and items
    `read_subscriptions` read) answer for those rows instead of a query; they are forgotten
    when the session flushes a change the store does not hold."""
    memory = _pending_held_subscriptions(session)
    pending: list[Subscription] = []
    if memory is None:  # a pending change the store does not hold
        session.flush()
        stored_ids = None  # read again: the flush may have added or moved subscriptions
        if stored_rows:
            stored_rows.clear()
    else:
        pending = _pending_of_customer(session, memory, customer_id)
    if stored_ids is None:
        parameters = {"customer_id": customer_id}
        stored_ids = session.connection().execute(_IDS_OF_CUSTOMER, parameters).scalars().all()
    found: list[tuple[Any, list[Any]]] = []
    taken: set[str] = set()  # ids answered from the unit of work
    unheld: list[str] = []
    for sub_id in set(stored_ids):
        items = held_items(session, sub_id)
        held = held_row(session, Subscription, sub_id)  # locked or new, not merely read
        if items is None or held is None:
            unheld.append(sub_id)
            continue
        taken.add(sub_id)
        if held.customer_id == customer_id:
            found.append((held, items))
    for held in pending:  # as a flush would write it, even if merely read before
        sub_id = _loaded(held, "id")
        if sub_id not in taken:
            taken.add(sub_id)
            found.append((held, held_items(session, sub_id) or []))
    # A pending held subscription answers for itself: one now another customer's is not
    # this one's, whatever the database says.
    unheld = [
        sub_id
        for sub_id in unheld
        if sub_id not in taken and (memory is None or not _is_pending(session, memory, sub_id))
    ]
    known = stored_rows or {}
    rows = [known[sub_id] for sub_id in unheld if sub_id in known]
    rows += read_subscriptions(session, [sub_id for sub_id in unheld if sub_id not in known])
    found.extend((row, items) for row, items in rows if row.customer_id == customer_id)
    return found


def read_subscriptions(
    session: Session, subscription_ids: Iterable[str]
) -> list[tuple[Any, list[Any]]]:
    """Stored subscriptions and their items (the columns MRR is computed from), two queries
    per chunk of ids; no flush."""
    ids = sorted(set(subscription_ids))
    if not ids:
        return []
    rows = _rows(session, _MRR_SUBSCRIPTION_COLUMNS, _SUBSCRIPTION.c.id, ids)
    items_of: dict[str, list[Any]] = defaultdict(list)
    for item in _rows(session, _MRR_ITEM_COLUMNS, _ITEM.c.subscription_id, ids):
        items_of[item.subscription_id].append(item)
    return [(row, items_of[row.id]) for row in rows]


@dataclass(eq=False, slots=True)
class _PendingSeen:
    """What `_pending_held_subscriptions` has looked at in this transaction and savepoint."""

    transaction: Any
    savepoint: Any
    seen: set[Any] = field(default_factory=set)  # states looked at (any table)
    # Objects are kept with their instance dicts: `obj.__dict__` on a SQLModel row goes
    # through pydantic's `__getattr__` hook, several times the cost of a dict lookup, and
    # these are read for every change the ledger records.
    # held subscription state -> (the subscription, its instance dict)
    subscriptions: dict[Any, tuple[Subscription, dict[str, Any]]] = field(default_factory=dict)
    states: dict[str, Any] = field(default_factory=dict)  # their states, by id
    # item state -> (item, its instance dict, the subscription_id it was checked with)
    items: dict[Any, tuple[Any, dict[str, Any], Any]] = field(default_factory=dict)
    # the last state of `session._new` when all of it was looked at; None once a state has
    # left `_new` since (`_newly_added`)
    new_last: Any = None


def _pending_held_subscriptions(session: Session) -> _PendingSeen | None:
    """What the session has pending of the subscriptions the store holds (new or changed:
    `_pending_of_customer`, `_is_pending`), or None when it has a pending subscription or
    item the store does not hold (one whose database row a flush would change without the
    store knowing).

    This runs for every change the ledger records while a batch's whole unit of work is
    pending, so it looks at each pending object once per transaction (by the session's own
    bookkeeping, which `session.new` and `session.dirty` are built from): a subscription's
    id never changes, and the store never forgets one it holds, so it stays held; an item is
    looked at again only when its `subscription_id` is no longer the one it was checked with."""
    held = held_subscription_ids(session)
    memory = _pending_memory(session)
    new, modified, deleted = session._new, session.identity_map._modified, session._deleted
    for states in (_newly_added(new, memory), modified - memory.seen):
        for state in states:
            memory.seen.add(state)
            kind = state.class_
            if kind is Subscription:
                subscription = state.obj()
                if subscription.id not in held:
                    memory.seen.discard(state)  # a flush comes next; look again after it
                    return None
                memory.subscriptions[state] = (subscription, vars(subscription))
                memory.states[subscription.id] = state
            elif kind is SubscriptionItem:
                item = state.obj()
                memory.items[state] = (item, vars(item), _UNCHECKED)
    memory.new_last = next(reversed(new), None)
    for state, (item, values, checked) in memory.items.items():
        if (
            checked is not _UNCHECKED and values.get("subscription_id", _UNCHECKED) is checked
        ) or not (state in new or state in modified):
            continue  # checked with this subscription, or not pending
        if item.subscription_id not in held or _moved(item):
            return None
        memory.items[state] = (item, values, item.subscription_id)
    for obj in deleted.values():
        if type(obj) is Subscription:
            if obj.id not in held:
                return None
        elif type(obj) is SubscriptionItem and (obj.subscription_id not in held or _moved(obj)):
            return None
    return memory


def _pending_of_customer(
    session: Session, memory: _PendingSeen, customer_id: str
) -> list[Subscription]:
    """The pending held subscriptions that now belong to the customer. The customer is
    compared first, in the instance dict (an unloaded one passes, to be read after): most
    pending subscriptions are other customers'."""
    return [
        subscription
        for state, (subscription, values) in memory.subscriptions.items()
        if values.get("customer_id", customer_id) == customer_id
        and _is_pending_state(session, state)
        and _loaded(subscription, "customer_id") == customer_id
    ]


def _is_pending(session: Session, memory: _PendingSeen, subscription_id: str) -> bool:
    """Whether this is a pending held subscription (of any customer)."""
    state = memory.states.get(subscription_id)
    return state is not None and _is_pending_state(session, state)


def _is_pending_state(session: Session, state: Any) -> bool:
    return (
        state in session._new or state in session.identity_map._modified
    ) and state not in session._deleted


def _newly_added(new: dict[Any, Any], memory: _PendingSeen) -> list[Any]:
    """The states in `session._new` not looked at yet, without going through the hundreds
    looked at before (the batch's whole unit of work is pending).

    `_new` is a dict, so in the order its states were added. While none has left it since
    `memory` last looked at all of it (a flush, an expunge: the session reports both,
    `_forget_new_last`), the states added since are those after the one that was last."""
    last, seen = memory.new_last, memory.seen
    if last is None or last not in new:
        return [state for state in new if state not in seen]
    added: list[Any] = []
    for state in reversed(new):
        if state is last:
            break
        if state not in seen:
            added.append(state)
    return added


def _forget_new_last(session: Session, _state_or_flush: Any) -> None:
    """`after_flush`, `pending_to_transient`: states have left `session._new`; one of them
    may come back, after states not looked at yet."""
    memory = session.info.get(_PENDING_KEY)
    if memory is not None:
        memory.new_last = None


_UNCHECKED = object()
_PENDING_KEY = "storage.store_mrr.pending"
_WATCHING = "storage.store_mrr.watching"


def _pending_memory(session: Session) -> _PendingSeen:
    transaction, savepoint = session.get_transaction(), session.get_nested_transaction()
    memory = session.info.get(_PENDING_KEY)
    if memory is None or memory.transaction is not transaction or memory.savepoint is not savepoint:
        memory = session.info[_PENDING_KEY] = _PendingSeen(transaction, savepoint)
        if not session.info.get(_WATCHING):
            session.info[_WATCHING] = True
            event.listen(session, "after_flush", _forget_new_last)
            event.listen(session, "pending_to_transient", _forget_new_last)
    return memory


def flushing_unheld_changes(session: Session) -> bool:
    """During a flush (`after_flush`, while `session.new`, `dirty` and `deleted` still list
    what it writes): whether it writes a subscription or item the store does not hold, or
    gives a held subscription a customer `held_rows` has not been told of."""
    held = held_subscription_ids(session)
    for obj in chain(session.new, session.dirty, session.deleted):
        kind = type(obj)
        if kind is Subscription:
            if obj.id not in held:
                return True
            filed = found_rows(session, Subscription, "customer_id", obj.customer_id)
            if filed is not None and all(row is not obj for row in filed):
                return True
        elif kind is SubscriptionItem and (obj.subscription_id not in held or _moved(obj)):
            return True
    return False


def _loaded(obj: Any, name: str) -> Any:
    """An attribute of a pending object: loaded, so read from its `__dict__`, which costs a
    tenth of the instrumented read (this runs for every pending subscription per change)."""
    try:
        return obj.__dict__[name]
    except KeyError:
        return getattr(obj, name)


def _moved(item: SubscriptionItem) -> bool:
    """An item given to another subscription (its old one may not be held). Only an
    attribute with a committed value recorded can have one to differ from."""
    if "subscription_id" not in attributes.instance_state(item).committed_state:
        return False
    return bool(attributes.get_history(item, "subscription_id").deleted)


def _rows(session: Session, columns: tuple, key: Any, values: Iterable[str]) -> list[Any]:
    """Stored rows (these columns) whose `key` is one of `values`."""
    values = sorted(set(values))
    connection = session.connection()
    statement = select(*columns).where(
        is_one_of(key, "values", postgresql=on_postgresql(connection))
    )
    rows: list[Any] = []
    for first in range(0, len(values), IN_CHUNK):
        rows.extend(connection.execute(statement, {"values": values[first : first + IN_CHUNK]}))
    return rows

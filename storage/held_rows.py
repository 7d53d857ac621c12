"""The billing rows one unit of work holds: read (and locked) once, then found without a query.

The worker applies a batch of events in one transaction, and most events touch an object
another event of the batch touched too. Reading each row again per event (and flushing
everything pending before each read) was most of the worker's cost. So the rows a batch
will upsert are read and locked up front, one query per table (`lock_objects`), together
with the items of the subscriptions among them; every upsert then asks here first.

What is remembered is exact for the rest of the unit of work because billing rows are never
deleted, and subscription items are written only by `storage.billing.upsert_subscription`,
which keeps its entry here up to date. The memory lives in `session.info`, so it ends with
the session.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from sqlmodel import Session, SQLModel, select

from storage.models import SubscriptionItem

RowT = TypeVar("RowT", bound=SQLModel)
LOCK_CHUNK = 500  # ids per IN (...) list
_ROWS = "billing.held_rows"
_ITEMS = "billing.held_items"


def lock_rows(*, session: Session, model: type[SQLModel], ids: Iterable[str]) -> None:
    """Read and lock the rows with these ids (`FOR UPDATE`, in id order, so two workers
    lock in the same order), and remember which ids have no row."""
    held = _rows(session)
    wanted = sorted({object_id for object_id in ids if (model, object_id) not in held})
    for first in range(0, len(wanted), LOCK_CHUNK):
        chunk = wanted[first : first + LOCK_CHUNK]
        query = select(model).where(model.id.in_(chunk)).order_by(model.id).with_for_update()
        found = {row.id: row for row in session.exec(query)}
        for object_id in chunk:
            held[(model, object_id)] = found.get(object_id)


def locked_row(session: Session, model: type[RowT], object_id: str) -> RowT | None:
    """The row as this unit of work holds it, locked; None when there is no such row."""
    held = _rows(session)
    key = (model, object_id)
    if key not in held:
        held[key] = session.get(model, object_id, with_for_update=True)
    return held[key]


def hold_row(session: Session, row: SQLModel) -> None:
    """A row this unit of work has just added."""
    _rows(session)[(type(row), row.id)] = row  # type: ignore[attr-defined]


def load_items(session: Session, subscription_ids: Iterable[str]) -> None:
    """Read the items of these (stored) subscriptions with one query per chunk."""
    held = _items(session)
    wanted = sorted({sub_id for sub_id in subscription_ids if sub_id not in held})
    for first in range(0, len(wanted), LOCK_CHUNK):
        chunk = wanted[first : first + LOCK_CHUNK]
        for sub_id in chunk:
            held[sub_id] = []
        query = select(SubscriptionItem).where(SubscriptionItem.subscription_id.in_(chunk))
        for item in session.exec(query):
            held[item.subscription_id].append(item)


def stored_items(session: Session, subscription_id: str) -> list[SubscriptionItem]:
    """A stored subscription's items, read once per unit of work."""
    if subscription_id not in _items(session):
        load_items(session, [subscription_id])
    return list(_items(session)[subscription_id])


def held_items(session: Session, subscription_id: str) -> list[SubscriptionItem] | None:
    """The subscription's items if this unit of work holds them, else None (ask the database)."""
    items = _items(session).get(subscription_id)
    return None if items is None else list(items)


def hold_items(session: Session, subscription_id: str, items: list[SubscriptionItem]) -> None:
    _items(session)[subscription_id] = list(items)


def _rows(session: Session) -> dict[tuple[type[SQLModel], str], Any]:
    return session.info.setdefault(_ROWS, {})


def _items(session: Session) -> dict[str, list[SubscriptionItem]]:
    return session.info.setdefault(_ITEMS, {})


def held_row(session: Session, model: type[RowT], object_id: str) -> RowT | None:
    """The row if this unit of work holds it (read and locked, or added: possibly not yet
    flushed), else None; never a query or a lock. For readers that must see the unit of
    work's own writes without flushing them."""
    return _rows(session).get((model, object_id))

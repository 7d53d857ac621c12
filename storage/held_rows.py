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

Rows a batch only reads (the invoice, charges and invoice payments that basil links go
through) are found the same way, without a lock: `find_rows` reads them with one query per
table and remembers, for each (table, column, value) it asked about, that the answer is
complete. An upsert that creates a row or changes it reports it (`note_row`), and answers
are filtered by the rows' current values, so they stay exact for the rest of the unit of
work as long as those columns change only through `storage.billing`'s upserts or are
reported too (`storage/links.py` reports a charge whose invoice it fills).
"""

from __future__ import annotations

import hashlib
from collections.abc import Container, Iterable
from typing import Any, TypeVar

from sqlalchemy import or_, text
from sqlmodel import Session, SQLModel, select

from storage.id_lists import is_one_of
from storage.models import SubscriptionItem

RowT = TypeVar("RowT", bound=SQLModel)
LOCK_CHUNK = 500  # ids per IN (...) list
_ROWS = "billing.held_rows"
_ITEMS = "billing.held_items"
_FOUND = "billing.found_rows"  # (model, column, value) -> {id: row}
_FOUND_COLUMNS = "billing.found_columns"  # model -> the columns asked about
UNKNOWN = object()  # what `known_row` says when this unit of work does not know


# One transaction-scoped advisory lock per key, taken in key order by one statement (the
# locks are taken after the sort: PostgreSQL evaluates a volatile output after ORDER BY).
_LOCK_KEYS = text(
    "SELECT pg_advisory_xact_lock(key) FROM unnest(CAST(:keys AS bigint[])) AS key ORDER BY key"
)


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory lock key for a row's name ("customer:cus_123")."""
    digest = hashlib.sha256(f"billbot.row:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_names(*, session: Session, names: Iterable[str]) -> None:
    """PostgreSQL: take a transaction-scoped advisory lock on each row name, in one statement
    and in key order, before any row is read. A row that does not exist yet has nothing to
    lock `FOR UPDATE`, so two workers could both find it missing and both insert it (one then
    fails on the primary key). Holding its name's lock until commit makes the second wait for
    the first's commit, and its read then finds the row. The worker calls this before its
    batch reads or writes anything, and every caller locks in the same order, so these waits
    cannot form a cycle. SQLite needs none: `BEGIN IMMEDIATE` already lets one writer in at
    a time."""
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({lock_key(name) for name in names})
    if keys:  # one text value in array syntax, as storage/id_lists.py binds its id lists
        session.execute(_LOCK_KEYS, {"keys": "{" + ",".join(map(str, keys)) + "}"})


def lock_rows(*, session: Session, model: type[SQLModel], ids: Iterable[str]) -> None:
    """Read and lock the rows with these ids (`FOR UPDATE`, in id order, so two workers
    lock in the same order), and remember which ids have no row."""
    held = _rows(session)
    wanted = sorted({object_id for object_id in ids if (model, object_id) not in held})
    for chunk in _chunks(session, wanted):
        query = select(model).where(_one_of(session, model.id, chunk))
        found = {row.id: row for row in session.exec(query.order_by(model.id).with_for_update())}
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
    note_row(session, row)


def find_rows(
    *, session: Session, model: type[RowT], where: dict[str, Iterable[str | None]]
) -> list[RowT]:
    """Read, without locking, every row whose `column` is one of its values (for each column
    in `where`), with one query per chunk; remember each answer as complete. Returns the rows
    read (ids this unit of work already holds are not read again)."""
    found, holding = _found(session), _rows(session)
    columns = _found_columns(session).setdefault(model, set())
    chunks = []
    for column, values in where.items():
        wanted = sorted(
            {
                value
                for value in values
                if value is not None
                and (model, column, value) not in found
                and (column != "id" or (model, value) not in holding)
            }
        )
        columns.add(column)
        for value in wanted:
            found[(model, column, value)] = {}
        chunks += [
            _one_of(session, getattr(model, column), chunk) for chunk in _chunks(session, wanted)
        ]
    rows: list[RowT] = []
    if chunks:
        session.flush()  # the answers must include this unit of work's own rows
    for first in range(0, len(chunks), 4):  # a few IN lists per query
        for row in session.exec(select(model).where(or_(*chunks[first : first + 4]))):
            note_row(session, row)
            rows.append(row)
    return rows


def rows_held(session: Session, model: type[RowT]) -> list[RowT]:
    """The rows of this table the unit of work holds (locked)."""
    return [row for (kind, _), row in _rows(session).items() if kind is model and row is not None]


def found_rows(
    session: Session, model: type[RowT], column: str, value: object
) -> list[RowT] | None:
    """The rows whose `column` now equals `value`, or None when this unit of work does not
    know them all (ask the database)."""
    if column == "id":
        row = known_row(session, model, value)  # type: ignore[arg-type]
        return None if row is UNKNOWN else ([] if row is None else [row])
    entry = _found(session).get((model, column, value))
    if entry is None:
        return None
    return [row for row in entry.values() if getattr(row, column) == value]


def asked_values(session: Session, model: type[SQLModel], column: str) -> set[Any]:
    """Every value of `column` whose rows `find_rows` has read for this unit of work (so
    `found_rows` answers for it)."""
    return {value for (kind, name, value) in _found(session) if kind is model and name == column}


def known_row(session: Session, model: type[RowT], object_id: str) -> RowT | None | object:
    """The row with this id, None when there is none, or `UNKNOWN`."""
    held = _rows(session).get((model, object_id), UNKNOWN)
    if held is not UNKNOWN:
        return held
    entry = _found(session).get((model, "id", object_id))
    if entry is None:
        return UNKNOWN
    return entry.get(object_id)


def get_row(session: Session, model: type[RowT], object_id: str) -> RowT | None:
    """The row with this id as this unit of work knows it, else as `session.get` finds it."""
    row = known_row(session, model, object_id)
    return session.get(model, object_id) if row is UNKNOWN else row  # type: ignore[return-value]


def note_row(session: Session, row: SQLModel) -> None:
    """A row was read, created or changed: file it under the answers it now belongs to."""
    model = type(row)
    columns = session.info.get(_FOUND_COLUMNS, {}).get(model)
    if not columns:
        return
    found = _found(session)
    for column in columns:
        entry = found.get((model, column, getattr(row, column)))
        if entry is not None:
            entry[row.id] = row  # type: ignore[attr-defined]


def load_items(session: Session, subscription_ids: Iterable[str]) -> None:
    """Read the items of these (stored) subscriptions with one query per chunk."""
    held = _items(session)
    wanted = sorted({sub_id for sub_id in subscription_ids if sub_id not in held})
    for chunk in _chunks(session, wanted):
        for sub_id in chunk:
            held[sub_id] = []
        column = SubscriptionItem.subscription_id
        query = select(SubscriptionItem).where(_one_of(session, column, chunk))
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


def held_subscription_ids(session: Session) -> Container[str]:
    """The subscriptions whose items this unit of work holds (a live view: cheap to ask
    many times)."""
    return _items(session).keys()


def hold_items(session: Session, subscription_id: str, items: list[SubscriptionItem]) -> None:
    _items(session)[subscription_id] = list(items)


def _chunks(session: Session, values: list[str]) -> list[list[str]]:
    """The values in lists of at most `LOCK_CHUNK` (SQLite: one bound parameter each), or
    in one list on PostgreSQL, where a list is a single array parameter (`_one_of`)."""
    if _on_postgresql(session):
        return [values] if values else []
    return [values[first : first + LOCK_CHUNK] for first in range(0, len(values), LOCK_CHUNK)]


def _one_of(session: Session, column, values: list[str]):
    """`column IN (...)`, as one array parameter on PostgreSQL (storage/id_lists.py)."""
    return is_one_of(column, None, postgresql=_on_postgresql(session), values=values)


def _on_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _rows(session: Session) -> dict[tuple[type[SQLModel], str], Any]:
    return session.info.setdefault(_ROWS, {})


def _found(session: Session) -> dict[tuple[type[SQLModel], str, object], dict[str, Any]]:
    return session.info.setdefault(_FOUND, {})


def _found_columns(session: Session) -> dict[type[SQLModel], set[str]]:
    return session.info.setdefault(_FOUND_COLUMNS, {})


def _items(session: Session) -> dict[str, list[SubscriptionItem]]:
    return session.info.setdefault(_ITEMS, {})


def held_row(session: Session, model: type[RowT], object_id: str) -> RowT | None:
    """The row if this unit of work holds it (read and locked, or added: possibly not yet
    flushed), else None; never a query or a lock. For readers that must see the unit of
    work's own writes without flushing them."""
    return _rows(session).get((model, object_id))

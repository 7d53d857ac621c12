"""Building and changing ORM rows on the worker's hot path, without SQLModel's per-field work.

SQLModel's `Model(**values)` runs its pydantic machinery for every field (about 140 µs for
an invoice here) and its `__setattr__` costs a few µs per attribute, even when the value
did not change. The worker writes several rows per event at well over a thousand events a
second, so rows are built with SQLAlchemy's own instrumentation (what the ORM does when it
loads a row from the database), with the model's declared defaults, and only changed
attributes are assigned. The rows are ordinary mapped instances: add, flush and query them
as usual.

`add_new` puts such a row in the session as `session.add` does, minus the walk along the
"save-update" cascade: our models have no relationships, so that walk finds nothing, yet it
visits every column property of the row (several µs for a wide row). A model that has
relationships is added with `session.add`.

The rows `add_new` added are INSERTed, at the next flush, by one driver-level executemany
per table (`_insert_added_rows`) instead of the unit of work's INSERTs: the ORM spent about
50 µs per row on a wide billing row (collecting each row's parameters, processing them again
per row in the execution context, re-reading each for psycopg), the driver's own executemany
of the same values about 20. This is only done for plain tables, where the INSERT is all
the ORM would do: every value is chosen by the client (no server defaults, no
autoincrement key), no foreign keys (so no order between tables to keep), no
relationships, no insert events. The rows then become persistent exactly as after the ORM's
INSERT (`Session._register_persistent`, what the flush itself calls), and the rest of the
flush writes whatever else is pending. A row whose values the ORM would treat specially (a
column missing, a None where the column's default would be used, a key already in the
identity map) is left to the ORM. So are rows with an autoincrement key on SQLite; on
PostgreSQL their keys come back from the executemany, in the order the rows were added.

The flush's `after_flush` listeners see these rows as persistent already, not in
`session.new`. The one such listener, `storage.store_mrr.flushing_unheld_changes`, looks there
for subscription rows the store does not hold; those added with `add_new` (by
`storage.billing`) are always held, so its answer is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from types import SimpleNamespace
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from pydantic_core import PydanticUndefined
from sqlalchemy import Table, event
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import ColumnProperty, InstanceState, attributes, configure_mappers
from sqlalchemy.orm import Session as OrmSession
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.util import safe_reraise
from sqlmodel import Session, SQLModel

from storage.raw_inserts import RawInsert, raw_insert

RowT = TypeVar("RowT", bound=SQLModel)
_MISSING = object()
_ADDED = "rows.added"  # session.info: the states `add_new` added, in order, until a flush


class RowSnapshot(SimpleNamespace):
    """What a row said at one moment: the same attribute names, outside any session."""


@cache
def _defaults(model: type[SQLModel]) -> tuple[dict[str, Any], dict[str, Callable[[], Any]]]:
    configure_mappers()
    values: dict[str, Any] = {}
    factories: dict[str, Callable[[], Any]] = {}
    for name, info in model.model_fields.items():
        if info.default_factory is not None:
            factories[name] = info.default_factory  # type: ignore[assignment]
        elif info.default is not PydanticUndefined:
            values[name] = info.default
    return values, factories


@cache
def _has_relationships(model: type[SQLModel]) -> bool:
    configure_mappers()
    return bool(manager_of_class(model).mapper.relationships)


@cache
def column_names(model: type[SQLModel]) -> tuple[str, ...]:
    return tuple(model.__table__.columns.keys())  # type: ignore[attr-defined]


def new_row(model: type[RowT], values: dict[str, Any]) -> RowT:
    """A new transient row with the model's defaults, then `values`.

    The values go straight into the instance's dict, as the ORM's own loading does: a row
    that was never stored has no history to record (its INSERT writes what the dict holds),
    so the per-attribute set events would only cost time. The instance and its ORM state
    are made as `ClassManager.new_instance` makes them, except that the state goes straight
    into the instance dict, where SQLModel's `__setattr__` would put it anyway (through
    pydantic's slower path first)."""
    defaults, factories = _defaults(model)
    manager = manager_of_class(model)
    row = model.__new__(model)
    values_dict = row.__dict__
    values_dict[manager.STATE_ATTR] = manager._state_constructor(row, manager)
    values_dict.update(defaults)
    for name, make in factories.items():
        if name not in values:
            values_dict[name] = make()
    values_dict.update(values)
    return row


def add_new(session: Session, row: SQLModel) -> None:
    """Add a new (transient) row to the session: pending until the next flush inserts it,
    exactly as `session.add(row)`, without the cascade walk when the model has no
    relationships (see the module docstring)."""
    if _has_relationships(type(row)) or session._warn_on_events:  # (inside a flush: warn)
        session.add(row)
        return
    state = attributes.instance_state(row)
    session._save_or_update_impl(state)
    if _plain(type(row)) is not None:
        session.info.setdefault(_ADDED, []).append(state)


def assign(row: SQLModel, values: dict[str, Any]) -> None:
    """Set the attributes whose value differs; unchanged columns stay out of the UPDATE."""
    current = row.__dict__
    for name, value in values.items():
        if current.get(name, _MISSING) != value:
            attributes.set_attribute(row, name, value)


def snapshot(row: SQLModel) -> RowSnapshot:
    """The row's column values, read from its instance dict (what the attributes return,
    without the instrumentation's per-attribute cost); a column that is not loaded there
    (expired) is read through its attribute, which loads it."""
    names, values = column_names(type(row)), row.__dict__
    if all(name in values for name in names):
        return RowSnapshot(**{name: values[name] for name in names})
    return RowSnapshot(**{name: getattr(row, name) for name in names})


# --- inserting the rows `add_new` added, one executemany per table --------------------


@dataclass(frozen=True, slots=True)
class _Plain:
    """A model whose INSERT is only its values (see the module docstring)."""

    names: tuple[str, ...]  # the columns the INSERT writes, in table order
    generated_key: str | None  # an autoincrement key the database chooses


@cache
def _plain(model: type[SQLModel]) -> _Plain | None:
    """How a model's rows can be inserted directly; None when only the ORM can."""
    configure_mappers()
    mapper = manager_of_class(model).mapper
    table = mapper.local_table
    if (
        not isinstance(table, Table)
        or mapper.inherits is not None
        or mapper.relationships
        or mapper.version_id_col is not None
        or table.foreign_keys
    ):
        return None
    for column in table.columns:
        prop = mapper.get_property_by_column(column)
        if (
            column.server_default is not None
            or column.computed is not None
            or column.identity is not None
            or not isinstance(prop, ColumnProperty)
            or prop.key != column.key
            or len(prop.columns) != 1
        ):
            return None
    generated = table.autoincrement_column
    names = tuple(column.key for column in table.columns if column is not generated)
    return _Plain(names=names, generated_key=None if generated is None else generated.key)


def _generated_key(model: type[SQLModel]) -> str | None:
    plain = _plain(model)
    return None if plain is None else plain.generated_key


@dataclass(frozen=True, slots=True)
class _Insert:
    """How a model's rows are inserted directly, as the ORM's INSERT would write them."""

    insert: RawInsert
    values: Callable[[dict[str, Any]], tuple[Any, ...]]  # KeyError when a column is missing
    # Positions where None is not a value to write: the key, and columns with a default
    # (for None the ORM leaves the column out of its INSERT, and so the default is used).
    not_none: tuple[int, ...]
    key_positions: tuple[int, ...]  # () when the database chooses the key
    generated_key: str | None


_DIRECT_INSERTS: WeakKeyDictionary[Dialect, dict[type[SQLModel], _Insert]] = WeakKeyDictionary()


def _direct_insert(model: type[SQLModel], dialect: Dialect) -> _Insert:
    built = _DIRECT_INSERTS.setdefault(dialect, {})
    if model not in built:
        built[model] = _new_direct_insert(model, dialect)
    return built[model]


def _new_direct_insert(model: type[SQLModel], dialect: Dialect) -> _Insert:
    plain = _plain(model)
    assert plain is not None
    names, generated = plain.names, plain.generated_key
    table: Table = model.__table__  # type: ignore[attr-defined]
    columns = [table.c[name] for name in names]
    return _Insert(
        insert=raw_insert(
            table, names, dialect, tail="" if generated is None else f" RETURNING {generated}"
        ),
        values=itemgetter(*names) if len(names) > 1 else lambda d: (d[names[0]],),
        not_none=tuple(
            index
            for index, column in enumerate(columns)
            if column.primary_key
            or (column.default is not None and not column.type.should_evaluate_none)
        ),
        key_positions=tuple(
            names.index(column.key)
            for column in manager_of_class(model).mapper.primary_key
            if column.key != generated
        ),
        generated_key=generated,
    )


@event.listens_for(OrmSession, "before_flush")  # (any session, SQLModel's among them)
def _insert_added_rows(session: Session, _flush_context: Any, objects: Any) -> None:
    """Before the unit of work flushes: INSERT the rows `add_new` added that are still
    pending, and make them persistent, as its own INSERT would have."""
    added: list[InstanceState[Any]] | None = session.info.pop(_ADDED, None)
    if not added or objects is not None:  # (a flush of some objects only: left to the ORM)
        return
    pending = session._new
    by_model: dict[type[SQLModel], list[InstanceState[Any]]] = {}
    for state in added:
        if state in pending:
            by_model.setdefault(state.class_, []).append(state)
    _leave_mixed_generated_keys(by_model, pending, added)
    if not by_model:
        return
    # The same transaction bracket as `Session._flush`: a failed INSERT leaves the session
    # needing a rollback exactly as a failed flush does.
    transaction = session._autobegin_t()._begin()
    try:
        connection = session.connection()
        written: set[InstanceState[Any]] = set()
        for model, states in by_model.items():
            written.update(_insert_rows(session, connection, model, states))
        if written:
            session._register_persistent(written)
        transaction.commit()
    except BaseException:
        with safe_reraise():
            transaction.rollback(_capture_exception=True)


def _leave_mixed_generated_keys(
    by_model: dict[type[SQLModel], list[InstanceState[Any]]],
    pending: Collection[InstanceState[Any]],
    added: list[InstanceState[Any]],
) -> None:
    """Leave to the ORM the rows of a model with a generated key when rows of it that
    `add_new` did not add are pending too: the ORM gives keys in the order rows were added,
    across both kinds, which rows inserted before its own would not keep."""
    generated = {model for model in by_model if _generated_key(model) is not None}
    if not generated:
        return
    ours = set(added)
    for state in pending:
        if state.class_ in generated and state not in ours:
            del by_model[state.class_]
            generated.discard(state.class_)
            if not generated:
                return


def _insert_rows(
    session: Session, connection: Any, model: type[SQLModel], states: list[InstanceState[Any]]
) -> list[InstanceState[Any]]:
    """INSERT these pending rows of one model with one executemany; returns those written
    (the others stay pending for the ORM)."""
    mapper = manager_of_class(model).mapper
    if mapper.dispatch.before_insert or mapper.dispatch.after_insert:
        return []
    plan = _direct_insert(model, connection.dialect)
    generated = plan.generated_key
    if generated is not None and connection.dialect.name != "postgresql":
        return []  # (the key must come back: `RawInsert.execute_returning`)
    identity_map, key_of = session.identity_map, mapper.identity_key_from_primary_key
    rows, written = [], []
    for state in states:
        try:
            values = plan.values(state.dict)
        except KeyError:
            continue
        if any(values[index] is None for index in plan.not_none):
            continue
        if generated is not None:
            if state.dict.get(generated) is not None:
                continue  # (a key chosen by the caller: the ORM writes it)
        elif key_of([values[index] for index in plan.key_positions]) in identity_map:
            continue  # (the ORM warns, or turns a deleted row's key into an UPDATE)
        rows.append(plan.insert.parameters(values))
        written.append(state)
    if generated is None:
        plan.insert.execute(connection, rows)
    else:
        for state, returned in zip(
            written, plan.insert.execute_returning(connection, rows), strict=True
        ):
            state.dict[generated] = returned[0][0]
    return written

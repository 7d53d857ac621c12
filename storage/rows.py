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
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from types import SimpleNamespace
from typing import Any, TypeVar

from pydantic_core import PydanticUndefined
from sqlalchemy.orm import attributes, configure_mappers
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlmodel import Session, SQLModel

RowT = TypeVar("RowT", bound=SQLModel)
_MISSING = object()


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
    session._save_or_update_impl(attributes.instance_state(row))


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

"""Small helpers shared by the handler tests."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import SQLModel

from storage.billing import COLUMNS, items_for_subscriptions
from storage.db import read_scope, session_scope

# Bookkeeping columns that differ between two stores holding the same facts.
BOOKKEEPING = {"raw", "version_at", "version_event_id", "updated_at"}


def facts(row: SQLModel | None) -> dict[str, Any]:
    """A row's columns without the bookkeeping, for comparing stores."""
    assert row is not None
    return {name: getattr(row, name) for name in COLUMNS[type(row)] if name not in BOOKKEEPING}


def at(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def fetch(engine: Engine, model: type[SQLModel], object_id: str) -> Any:
    """One stored row, loaded and detached (readable after its session closed)."""
    with session_scope(engine) as session:
        return session.get(model, object_id)


def items_of(engine: Engine, subscription_id: str) -> dict[str, tuple[Any, ...]]:
    """A subscription's stored items as {id: (price_id, quantity, unit_amount)}."""
    with read_scope(engine) as session:
        found = items_for_subscriptions(session=session, subscription_ids=[subscription_id])
        return {i.id: (i.price_id, i.quantity, i.unit_amount) for i in found[subscription_id]}

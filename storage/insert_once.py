"""Insert-or-nothing for ORM rows, without a savepoint.

`session.begin_nested()` around `session.add` costs a SAVEPOINT, a flush and a RELEASE for
every alert and outbox row the worker writes, which made reactions its most expensive part.
`INSERT ... ON CONFLICT (key) DO NOTHING RETURNING id` gives the same answer (was this row
new?) in one statement, and on PostgreSQL a concurrent inserter of the same key waits for
the other transaction and then inserts nothing, exactly as the unique constraint did.
"""

from __future__ import annotations

import functools

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, SQLModel


def insert_ignoring_conflict(*, session: Session, row: SQLModel, conflict_on: str) -> int | None:
    """Insert `row` (a new ORM object with an integer `id` the database assigns) unless a row
    with the same `conflict_on` value exists. Returns the new id, and makes `row` the
    session's persistent object for it; None (and `row` left untouched) on a conflict."""
    session.flush()  # rows this one may refer to (foreign keys) are written first
    table = type(row).__table__
    values = {
        column.key: getattr(row, column.key)
        for column in table.columns
        if not (column.key == "id" and row.id is None)
    }
    statement = _statement(table, conflict_on, session.get_bind().dialect.name)
    new_id = session.execute(statement, values).scalar()
    if new_id is None:
        return None
    row.id = new_id
    make_transient_to_detached(row)
    session.add(row)
    return new_id


@functools.cache
def _statement(table: Table, conflict_on: str, dialect_name: str) -> Insert:
    """Built once: the values go in as parameters, so SQLAlchemy's compiled cache is hit
    (a fresh `.values(...)` per row cost more than the savepoint it replaced)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    return (
        dialect.insert(table)
        .on_conflict_do_nothing(index_elements=[conflict_on])
        .returning(table.c.id)
    )

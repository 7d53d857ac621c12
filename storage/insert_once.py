"""Insert-or-nothing for ORM rows, without a savepoint.

`session.begin_nested()` around `session.add` costs a SAVEPOINT, a flush and a RELEASE for
every alert and outbox row the worker writes, which made reactions its most expensive part.
`INSERT ... ON CONFLICT (key) DO NOTHING RETURNING id` gives the same answer (was this row
new?) in one statement, and on PostgreSQL a concurrent inserter of the same key waits for
the other transaction and then inserts nothing, exactly as the unique constraint did.

The statement runs on the session's connection: it flushes nothing (the tables written this
way have no foreign keys, and their rows are never left pending), so the caller's pending
rows are written when the caller flushes or commits.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, SQLModel


def insert_ignoring_conflict(*, session: Session, row: SQLModel, conflict_on: str) -> int | None:
    """Insert `row` (a new ORM object with an integer `id` the database assigns) unless a row
    with the same `conflict_on` value exists. Returns the new id, and makes `row` the
    session's persistent object for it; None (and `row` left untouched) on a conflict."""
    table = type(row).__table__
    values = {
        column.key: getattr(row, column.key)
        for column in table.columns
        if not (column.key == "id" and row.id is None)
    }
    new_id = insert_values_ignoring_conflict(
        session=session, table=table, values=values, conflict_on=conflict_on
    )
    if new_id is None:
        return None
    row.id = new_id
    make_transient_to_detached(row)
    session.add(row)
    return new_id


def insert_values_ignoring_conflict(
    *, session: Session, table: Table, values: dict[str, Any], conflict_on: str
) -> int | None:
    """The same for a row given as column values (columns left out get their defaults), when
    the caller needs no ORM object: the new id, or None on a conflict."""
    connection = session.connection()
    statement = _statement(table, conflict_on, connection.dialect.name)
    return connection.execute(statement, values).scalar()


def insert_many_ignoring_conflict(
    *, session: Session, table: Table, rows: list[dict[str, Any]], conflict_on: str
) -> None:
    """Several rows given as column values (each with the same columns), in one `executemany`;
    rows whose `conflict_on` value exists are left out. For callers that need no ids."""
    if rows:
        connection = session.connection()
        statement = _statement(table, conflict_on, connection.dialect.name, returning=False)
        connection.execute(statement, rows)


@functools.cache
def _statement(
    table: Table, conflict_on: str, dialect_name: str, *, returning: bool = True
) -> Insert:
    """Built once: the values go in as parameters, so SQLAlchemy's compiled cache is hit
    (a fresh `.values(...)` per row cost more than the savepoint it replaced)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=[conflict_on])
    return statement.returning(table.c.id) if returning else statement

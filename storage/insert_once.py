"""Insert-or-nothing for the alert and outbox tables, without a savepoint.

`session.begin_nested()` around `session.add` costs a SAVEPOINT, a flush and a RELEASE for
every alert and outbox row the worker writes, which made reactions its most expensive part.
`INSERT ... ON CONFLICT (key) DO NOTHING RETURNING id` gives the same answer (was this row
new?) in one statement, and on PostgreSQL a concurrent inserter of the same key waits for
the other transaction and then inserts nothing, exactly as the unique constraint did.

Several rows at once (`insert_many_returning_keys`, the alerts a worker batch opens) are one
multi-row statement with the same guarantee for each row; the rows that conflicted are the
ones missing from what it returns.

The statement runs on the session's connection: it flushes nothing (the tables written this
way have no foreign keys, and their rows are never left pending), so the caller's pending
rows are written when the caller flushes or commits.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session


def insert_values_ignoring_conflict(
    *, session: Session, table: Table, values: dict[str, Any], conflict_on: str
) -> int | None:
    """Insert a row given as column values (columns left out get their defaults) unless a
    row with the same `conflict_on` value exists: the new id, or None on a conflict."""
    connection = session.connection()
    statement = _statement(table, conflict_on, connection.dialect.name)
    return connection.execute(statement, values).scalar()


def insert_many_returning_keys(
    *, session: Session, table: Table, rows: list[dict[str, Any]], conflict_on: str
) -> dict[Any, int]:
    """Several rows given as column values (each with the same columns), as multi-row
    `INSERT ... ON CONFLICT DO NOTHING RETURNING id, <conflict_on>` statements (SQLAlchemy's
    "insertmanyvalues": one statement per 1,000 rows), inserted in the order given: the new
    ids by `conflict_on` value; a row whose value exists already is not among them."""
    if not rows:
        return {}
    connection = session.connection()
    statement = _statement(table, conflict_on, connection.dialect.name, returning_key=True)
    return {key: new_id for new_id, key in connection.execute(statement, rows)}


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
    table: Table,
    conflict_on: str,
    dialect_name: str,
    *,
    returning: bool = True,
    returning_key: bool = False,
) -> Insert:
    """Built once: the values go in as parameters, so SQLAlchemy's compiled cache is hit
    (a fresh `.values(...)` per row cost more than the savepoint it replaced)."""
    dialect = postgresql if dialect_name == "postgresql" else sqlite
    statement = dialect.insert(table).on_conflict_do_nothing(index_elements=[conflict_on])
    if returning_key:
        return statement.returning(table.c.id, table.c[conflict_on])
    return statement.returning(table.c.id) if returning else statement

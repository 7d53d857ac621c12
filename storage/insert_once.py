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

Several rows are written as the driver's own executemany (storage/raw_inserts.py): on
PostgreSQL SQLAlchemy's multi-row `INSERT ... RETURNING` is a statement psycopg parses again
every time (about 100 µs of client CPU per alert row, against about 20), and an executemany
of dicts processes every row's parameters twice. The columns a row leaves out get their
defaults as SQLAlchemy would give them (a scalar, or a call per row); a table with any
other kind of default keeps SQLAlchemy's statement.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from operator import itemgetter
from typing import Any

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlmodel import Session

from storage.raw_inserts import RawInsert, raw_insert


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
    direct = _direct_rows(table, rows, connection.dialect, returning_key=conflict_on)
    if direct is not None and connection.dialect.name == "postgresql":
        insert, values = direct
        return {key: new_id for new_id, key in insert.returned(connection, values)}
    statement = _statement(table, conflict_on, connection.dialect.name, returning_key=True)
    return {key: new_id for new_id, key in connection.execute(statement, rows)}


def insert_many_ignoring_conflict(
    *, session: Session, table: Table, rows: list[dict[str, Any]], conflict_on: str
) -> None:
    """Several rows given as column values (each with the same columns), in one `executemany`;
    rows whose `conflict_on` value exists are left out. For callers that need no ids."""
    if not rows:
        return
    connection = session.connection()
    direct = _direct_rows(table, rows, connection.dialect, ignoring=conflict_on)
    if direct is not None:
        insert, values = direct
        insert.execute(connection, values)
        return
    statement = _statement(table, conflict_on, connection.dialect.name, returning=False)
    connection.execute(statement, rows)


def _direct_rows(
    table: Table,
    rows: list[dict[str, Any]],
    dialect: Dialect,
    *,
    ignoring: str | None = None,
    returning_key: str | None = None,
) -> tuple[RawInsert, list[tuple[Any, ...]]] | None:
    """The rows, completed with the defaults of the columns they leave out, and their
    INSERT (`ON CONFLICT (ignoring or returning_key) DO NOTHING`, and `RETURNING id,
    returning_key`); None when a default left out is not a scalar or a plain call."""
    given = tuple(rows[0])
    fill = _fill(table, given)
    if fill is None:
        return None
    names = given + tuple(name for name, _ in fill)
    tail = f" ON CONFLICT ({ignoring or returning_key}) DO NOTHING"
    if returning_key is not None:
        tail += f" RETURNING {table.c.id.name}, {returning_key}"
    insert = raw_insert(table, names, dialect, tail=tail)
    values = itemgetter(*given) if len(given) > 1 else lambda row: (row[given[0]],)
    return insert, [
        insert.parameters((*values(row), *(make() for _, make in fill))) for row in rows
    ]


@functools.cache
def _fill(table: Table, given: tuple[str, ...]) -> tuple[tuple[str, Callable[[], Any]], ...] | None:
    """For each column with a default that `given` leaves out: its name, and what makes its
    value for one row, as SQLAlchemy would (a scalar; a call per row of a function that
    takes no context, which SQLAlchemy keeps as `__wrapped__`)."""
    fill = []
    for column in table.columns:
        default = column.default
        if column.key in given or default is None:
            continue
        if default.is_scalar:
            fill.append((column.key, functools.partial(_same, default.arg)))
        elif default.is_callable and hasattr(default.arg, "__wrapped__"):
            fill.append((column.key, default.arg.__wrapped__))
        else:
            return None
    return tuple(fill)


def _same(value: Any) -> Any:
    return value


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

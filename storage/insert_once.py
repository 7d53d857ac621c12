"""Insert-or-nothing for the alert and outbox tables, without a savepoint.

`session.begin_nested()` around `session.add` costs a SAVEPOINT, a flush and a RELEASE for
every alert and outbox row the worker writes, which made reactions its most expensive part.
`INSERT ... ON CONFLICT (key) DO NOTHING RETURNING id` gives the same answer (was this row
new?) in one statement, and on PostgreSQL a concurrent inserter of the same key waits for
the other transaction and then inserts nothing, exactly as the unique constraint did.

Several rows at once (`insert_many_returning_keys`, the alerts a worker batch opens) are one
multi-row statement with the same guarantee for each row; the rows that conflicted are the
ones missing from what it returns.

On PostgreSQL several rows go in as one JSON parameter instead (`_json_rows_insert`:
`INSERT ... SELECT ... FROM jsonb_to_recordset(:rows) ORDER BY ordinal`), one statement of
fixed text: psycopg parses a statement's text for its placeholders each time it has more than
50 of them (a multi-row VALUES list), and sends an `executemany` row by row; both cost the
worker more client CPU than writing the rows did. The ids are still given in the order of the
rows (the ORDER BY feeds the insert in that order; SQLAlchemy's own "insertmanyvalues" relies
on the same), and each row still conflicts or not exactly as on its own.

The statement runs on the session's connection: it flushes nothing (the tables written this
way have no foreign keys, and their rows are never left pending), so the caller's pending
rows are written when the caller flushes or commits.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Insert, Integer, Table, Text, bindparam, cast, column, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from storage.types import NAIVE

ORDINAL = "ordinal"  # each row's place in a JSON rows parameter


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
    if connection.dialect.name == "postgresql":
        statement = _json_rows_insert(table, tuple(rows[0]), conflict_on, returning_key=True)
        return {key: new_id for new_id, key in connection.execute(statement, _json_rows(rows))}
    statement = _statement(table, conflict_on, connection.dialect.name, returning_key=True)
    return {key: new_id for new_id, key in connection.execute(statement, rows)}


def insert_many_ignoring_conflict(
    *, session: Session, table: Table, rows: list[dict[str, Any]], conflict_on: str
) -> None:
    """Several rows given as column values (each with the same columns), in one `executemany`
    (one statement on PostgreSQL), in the order given; rows whose `conflict_on` value exists
    are left out. For callers that need no ids."""
    if not rows:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        statement = _json_rows_insert(table, tuple(rows[0]), conflict_on, returning_key=False)
        connection.execute(statement, _json_rows(rows))
        return
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


@functools.cache
def _json_rows_insert(
    table: Table, columns: tuple[str, ...], conflict_on: str, *, returning_key: bool
) -> Insert:
    """PostgreSQL: `INSERT INTO table (columns) SELECT columns FROM jsonb_to_recordset(:rows)
    AS r(ordinal INTEGER, column TYPE, ...) ORDER BY ordinal ON CONFLICT DO NOTHING`, each
    JSON value read as its column's type; columns left out get their defaults, as in
    `_statement`."""
    rows = (
        func.jsonb_to_recordset(cast(bindparam("rows", type_=Text()), postgresql.JSONB()))
        .table_valued(
            column(ORDINAL, Integer()), *(column(name, table.c[name].type) for name in columns)
        )
        .render_derived(with_types=True)
    )
    ordered = select(*(rows.c[name] for name in columns)).order_by(rows.c[ORDINAL])
    statement = (
        postgresql.insert(table)
        .from_select(list(columns), ordered)
        .on_conflict_do_nothing(index_elements=[conflict_on])
    )
    return statement.returning(table.c.id, table.c[conflict_on]) if returning_key else statement


def _json_rows(rows: list[dict[str, Any]]) -> dict[str, str]:
    """The rows as the one JSON parameter of `_json_rows_insert`."""
    numbered = [{ORDINAL: ordinal, **row} for ordinal, row in enumerate(rows)]
    try:
        text = orjson.dumps(numbered, default=_utc_text, option=_JSON_OPTIONS)
    except orjson.JSONEncodeError as exc:  # orjson wraps what `_utc_text` raised
        raise (exc.__cause__ or exc) from None
    return {"rows": text.decode()}


_JSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME


def _utc_text(value: object) -> str:
    """Timestamps as UTC text, refusing naive ones as the UTC columns do (`UTCDateTime`)."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(NAIVE)
        return value.astimezone(UTC).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")

"""INSERTs of many rows in the form each driver takes cheapest, with values bound as
SQLAlchemy binds them.

SQLAlchemy's executemany of a compiled INSERT processes every row's parameters in its
execution context, and psycopg then reorders each row's named parameters; with rows given
as tuples in the driver's paramstyle, the driver's executemany does only the binding. For
the many rows a worker batch writes (billing rows, timeline lines) that was about half of
the INSERT's client CPU. Each value still goes through its column type's SQLAlchemy bind
processor, so the stored values are those the ORM or Core would store (JSON through the
engine's serializer, UTC timestamps as `storage.types.UTCDateTime` writes them).

On PostgreSQL the rows go further, as one statement with one parameter: a JSON array of the
rows, which `INSERT ... SELECT ... FROM json_to_recordset(...)` reads as typed columns
(`RawInsert.document`). psycopg's executemany sends and prepares a statement per row in a
pipeline, about 25 µs of client CPU a row here; the document costs 8 (orjson builds it, the
server parses it, on its own CPU). For 20,000 bench events, 25,000 rows: 0.54 to 0.67 s of the
worker's CPU became 0.19 to 0.24 s. The same statement with a RETURNING clause answers its
rows in no particular order (`returned`).

The statement runs through `Connection.exec_driver_sql`, so errors are SQLAlchemy's
(`IntegrityError` and so on) and the connection's events see it, as for any statement.

An INSERT whose rows must each say something back, in order (`... RETURNING id` for keys the
database generates), is, on PostgreSQL, psycopg's executemany with `returning=True`
(`execute_returning`). SQLAlchemy would send the rows as
one multi-row `INSERT ... VALUES (...), (...) RETURNING` ("insertmanyvalues"), a statement
psycopg cannot cache and parses again every time, a few µs per placeholder: about 100 µs of
client CPU per row for a 14-column row, where the executemany of one short statement
(parsed once, then prepared) costs about 20. SQLAlchemy has no executemany that returns
rows, so `exec_driver_sql` runs it with an execution option that a `do_executemany` hook
(`_executemany_returning`) answers by calling psycopg itself: SQLAlchemy's events, logging
and error handling still see the statement.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import orjson
from sqlalchemy import JSON, Connection, Engine, Table, event
from sqlalchemy.engine import Dialect, ExecutionContext


@dataclass(frozen=True, slots=True)
class RawInsert:
    """An INSERT of `names` into a table, in one dialect's paramstyle."""

    sql: str
    # (position, SQLAlchemy bind processor) for each column whose type has one
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]
    # PostgreSQL: the same INSERT taking all its rows as one JSON document (`_document_sql`),
    # with the names of its columns and the positions of its JSON columns
    document_sql: str | None = None
    names: tuple[str, ...] = ()
    json_positions: tuple[int, ...] = ()

    def document(self, rows: list[tuple[Any, ...]]) -> str:
        """The rows as `document_sql` takes them: a JSON array of objects keyed by column.
        JSON columns hold their values themselves (bound, they are psycopg `Jsonb` wrappers)."""
        names, json_positions = self.names, self.json_positions
        if json_positions:
            unwrapped = []
            for row in rows:
                values = list(row)
                for index in json_positions:
                    values[index] = values[index].obj
                unwrapped.append(values)
            rows = unwrapped
        objects = [dict(zip(names, row, strict=True)) for row in rows]
        return orjson.dumps(objects, option=orjson.OPT_NON_STR_KEYS).decode()

    def parameters(self, values: Sequence[Any]) -> tuple[Any, ...]:
        """One row's values (in `names` order) as the driver must get them."""
        if not self.processors:
            return tuple(values)
        row = list(values)
        for index, process in self.processors:
            row[index] = process(row[index])
        return tuple(row)

    def execute(self, connection: Connection, rows: list[tuple[Any, ...]]) -> int:
        """Insert the rows (made by `parameters`); the driver's count of rows inserted."""
        if not rows:
            return 0
        if self.document_sql is not None:
            document = self.document(rows)
            return connection.exec_driver_sql(self.document_sql, (document,)).rowcount
        return connection.exec_driver_sql(self.sql, rows).rowcount

    def returned(self, connection: Connection, rows: list[tuple[Any, ...]]) -> list[Any]:
        """PostgreSQL: insert the rows (a statement with a RETURNING clause) in one statement;
        all the rows it returned, in no particular order."""
        if not rows:
            return []
        assert self.document_sql is not None, "a RETURNING insert of many rows is PostgreSQL's"
        return connection.exec_driver_sql(self.document_sql, (self.document(rows),)).all()

    def execute_returning(
        self, connection: Connection, rows: list[tuple[Any, ...]]
    ) -> list[list[Any]]:
        """PostgreSQL: insert the rows (a statement with a RETURNING clause, see
        `raw_insert`'s `tail`) with one executemany; for each row, in order, the rows it
        returned (none for a row an `ON CONFLICT DO NOTHING` left out)."""
        if len(rows) < 2:  # (one row is an execute, whose result is the usual one)
            return [connection.exec_driver_sql(self.sql, rows).all()] if rows else []
        returned: list[list[Any]] = []
        options = {_RETURNED_ROWS: returned}
        connection.exec_driver_sql(self.sql, rows, execution_options=options).close()
        return returned


# An execution option: a list that receives, for each row of an executemany, what it returned.
_RETURNED_ROWS = "storage.raw_inserts.returned_rows"


@event.listens_for(Engine, "do_executemany")
def _executemany_returning(
    cursor: Any, statement: str, parameters: Any, context: ExecutionContext
) -> bool | None:
    """Run the executemany of `RawInsert.execute_returning` as psycopg's with
    `returning=True`, keeping what each row returned. Inside SQLAlchemy's execution, so its
    events, logging and error handling see the statement as any other."""
    returned = context.execution_options.get(_RETURNED_ROWS)
    if returned is None:
        return None  # any other executemany: the dialect's own
    cursor.executemany(statement, parameters, returning=True)
    returned.append(cursor.fetchall())
    while cursor.nextset():
        returned.append(cursor.fetchall())
    return True


_CACHE: WeakKeyDictionary[Dialect, dict[tuple[Table, tuple[str, ...], str], RawInsert]] = (
    WeakKeyDictionary()
)


def raw_insert(
    table: Table, names: tuple[str, ...], dialect: Dialect, *, tail: str = ""
) -> RawInsert:
    """`INSERT INTO table (names) VALUES (...)` plus `tail` (an `ON CONFLICT` clause), built
    once per dialect (the bind processors belong to the engine's dialect: its JSON
    serializer)."""
    built = _CACHE.setdefault(dialect, {})
    key = (table, names, tail)
    insert = built.get(key)
    if insert is None:
        marker = "?" if dialect.paramstyle == "qmark" else "%s"
        processors = (
            (index, table.c[name].type.dialect_impl(dialect).bind_processor(dialect))
            for index, name in enumerate(names)
        )
        insert = built[key] = RawInsert(
            sql=f"INSERT INTO {table.name} ({', '.join(names)}) "
            f"VALUES ({', '.join([marker] * len(names))}){tail}",
            processors=tuple((index, process) for index, process in processors if process),
            document_sql=_document_sql(table, names, dialect, tail)
            if dialect.name == "postgresql"
            else None,
            names=names,
            json_positions=tuple(
                index for index, name in enumerate(names) if _is_json(table, name, dialect)
            ),
        )
    return insert


def _is_json(table: Table, name: str, dialect: Dialect) -> bool:
    return isinstance(table.c[name].type.dialect_impl(dialect), JSON)


def _document_sql(table: Table, names: tuple[str, ...], dialect: Dialect, tail: str) -> str:
    """`INSERT INTO table (names) SELECT ... FROM json_to_recordset(%s) ... tail`: all the
    rows in one parameter (`RawInsert.document`), each column read as its own type. A JSON
    value null is read as SQL NULL, so a JSON column that stores Python's None as JSON null
    (SQLAlchemy's default) gets it back as JSON null."""
    quote = dialect.identifier_preparer.quote
    declared, selected = [], []
    for name in names:
        column_type, column = table.c[name].type, quote(name)
        spec = column_type.compile(dialect=dialect)
        declared.append(f"{column} {spec}")
        stores_none_as_null = getattr(column_type, "none_as_null", False)
        if _is_json(table, name, dialect) and not stores_none_as_null:
            selected.append(f"COALESCE(r.{column}, CAST('null' AS {spec}))")
        else:
            selected.append(f"r.{column}")
    return (
        f"INSERT INTO {table.name} ({', '.join(map(quote, names))}) SELECT {', '.join(selected)} "
        f"FROM json_to_recordset(%s::json) AS r({', '.join(declared)}){tail}"
    )

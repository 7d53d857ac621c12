"""INSERTs run as the driver's own executemany, with values bound as SQLAlchemy binds them.

SQLAlchemy's executemany of a compiled INSERT processes every row's parameters in its
execution context, and psycopg then reorders each row's named parameters; with rows given
as tuples in the driver's paramstyle, the driver's executemany does only the binding. For
the many rows a worker batch writes (billing rows, timeline lines) that was about half of
the INSERT's client CPU. Each value still goes through its column type's SQLAlchemy bind
processor, so the stored values are those the ORM or Core would store (JSON through the
engine's serializer, UTC timestamps as `storage.types.UTCDateTime` writes them).

The statement runs through `Connection.exec_driver_sql`, so errors are SQLAlchemy's
(`IntegrityError` and so on) and the connection's events see it, as for any statement.

An INSERT whose rows must say something back (`... RETURNING id`) is, on PostgreSQL, psycopg's
executemany with `returning=True` (`execute_returning`). SQLAlchemy would send the rows as
one multi-row `INSERT ... VALUES (...), (...) RETURNING` ("insertmanyvalues"), a statement
psycopg cannot cache and parses again every time, a few µs per placeholder: about 100 µs of
client CPU per row for a 14-column row, where the executemany of one short statement
(parsed once, then prepared) costs about 20. SQLAlchemy has no executemany that returns
rows, so this one runs on the driver's cursor, and a driver error is raised as SQLAlchemy's
exception for it, as `exec_driver_sql` would.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Connection, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError


@dataclass(frozen=True, slots=True)
class RawInsert:
    """An INSERT of `names` into a table, in one dialect's paramstyle."""

    sql: str
    # (position, SQLAlchemy bind processor) for each column whose type has one
    processors: tuple[tuple[int, Callable[[Any], Any]], ...]

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
        return connection.exec_driver_sql(self.sql, rows).rowcount

    def execute_returning(
        self, connection: Connection, rows: list[tuple[Any, ...]]
    ) -> list[list[tuple[Any, ...]]]:
        """PostgreSQL: insert the rows (a statement with a RETURNING clause, see
        `raw_insert`'s `tail`) with one executemany; for each row, in order, what it
        returned (nothing for a row an `ON CONFLICT DO NOTHING` left out)."""
        if not rows:
            return []
        dbapi_error = connection.dialect.loaded_dbapi.Error
        cursor = connection.connection.driver_connection.cursor()
        try:
            cursor.executemany(self.sql, rows, returning=True)
            returned = [cursor.fetchall()]
            while cursor.nextset():
                returned.append(cursor.fetchall())
            return returned
        except dbapi_error as error:
            raise DBAPIError.instance(
                self.sql, rows, error, dbapi_error, dialect=connection.dialect, ismulti=True
            ) from error
        finally:
            cursor.close()


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
        )
    return insert

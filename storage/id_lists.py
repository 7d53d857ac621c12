"""`column IN (ids)` the way each database takes a long list best.

psycopg parses a statement's text for its placeholders whenever the text is new, and an
expanding IN list of n ids is n placeholders and a new text for every n: for the lists a
batch of a thousand events asks about, parsing cost more on the client than the query did
in PostgreSQL. There the list is one array parameter instead (`column = ANY(:ids)`): one
placeholder, the same text every time. SQLite has no arrays and keeps the IN list.

The array goes out as one text value in PostgreSQL's array syntax (`{"cus_1","cus_2"}`):
psycopg dumps a Python list element by element in Python, about 1.5 µs an id here, and a
worker batch binds tens of thousands of ids (`array_literal` joins them in one step). The
parameter itself is typed as an array (`$1::VARCHAR[]`), so the server reads the text once,
when it binds it. A text parameter cast to an array in the statement
(`CAST($1::VARCHAR AS VARCHAR[])`) is an expression the planner cannot fold, and a scan
evaluated it for every row it looked at: 500 ms instead of 1.5 ms for a thousand ids
against 3,500 charges, and most of the PostgreSQL server's time in a worker batch.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import any_, bindparam
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import UserDefinedType


def array_literal(values: Iterable[object]) -> str:
    """PostgreSQL's text form of an array of these values (None is NULL): every element
    double-quoted, with `"` and `\\` escaped."""
    values = list(values)
    try:
        joined = '","'.join(values)  # type: ignore[arg-type]  # all strings: the usual case
    except TypeError:
        joined = None
    # Only the separators' quotes, and no backslash: nothing to escape (ids never need it).
    if joined is None or "\\" in joined or joined.count('"') != 2 * (len(values) - 1):
        return "{" + ",".join(_array_element(value) for value in values) + "}"  # {} when empty
    return '{"' + joined + '"}'


def _array_element(value: object) -> str:
    if value is None:
        return "NULL"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


class _TextArray(UserDefinedType[list[str]]):
    """A list of strings bound as one `array_literal` text, in a parameter typed `VARCHAR[]`
    (psycopg sends a str with no type of its own: the statement's cast gives the parameter
    its type, rather than converting a text parameter)."""

    cache_ok = True
    render_bind_cast = True

    def get_col_spec(self, **kw: Any) -> str:
        return "VARCHAR[]"

    def bind_processor(self, dialect):
        def process(value):
            return None if value is None else array_literal(value)

        return process


def is_one_of(
    column: Any, name: str | None, *, postgresql: bool, values: list[str] | None = None
) -> ColumnElement[bool]:
    """`column` is one of the strings bound as `name` (a list given at execution), or of
    `values` when they are given now (then `name` may be None: an anonymous parameter)."""
    if postgresql:
        return column == any_(bindparam(name, values, type_=_TextArray()))
    if values is not None:
        return column.in_(values)
    return column.in_(bindparam(name, expanding=True))


def on_postgresql(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"

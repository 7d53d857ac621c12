"""`column IN (ids)` the way each database takes a long list best.

psycopg parses a statement's text for its placeholders whenever the text is new, and an
expanding IN list of n ids is n placeholders and a new text for every n: for the lists a
batch of a thousand events asks about, parsing cost more on the client than the query did
in PostgreSQL. There the list is one array parameter instead (`column = ANY(:ids)`): one
placeholder, the same text every time. SQLite has no arrays and keeps the IN list.

The array goes out as one text value in PostgreSQL's array syntax (`{"cus_1","cus_2"}`),
cast to an array in the statement: psycopg dumps a Python list element by element in
Python, about 1.5 µs an id here, and a worker batch binds tens of thousands of ids
(`array_literal` joins them in one step).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ARRAY, String, any_, bindparam, cast
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator


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


class _TextArray(TypeDecorator[list[str]]):
    """A list of strings bound as one text value, `array_literal`; cast to an array in SQL."""

    impl = String
    cache_ok = True

    def process_bind_param(self, value, dialect):
        return None if value is None else array_literal(value)


def is_one_of(
    column: Any, name: str | None, *, postgresql: bool, values: list[str] | None = None
) -> ColumnElement[bool]:
    """`column` is one of the strings bound as `name` (a list given at execution), or of
    `values` when they are given now (then `name` may be None: an anonymous parameter)."""
    if postgresql:
        ids = cast(bindparam(name, values, type_=_TextArray()), ARRAY(String()))
        return column == any_(ids)
    if values is not None:
        return column.in_(values)
    return column.in_(bindparam(name, expanding=True))


def on_postgresql(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"

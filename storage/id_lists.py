"""`column IN (ids)` the way each database takes a long list best.

psycopg parses a statement's text for its placeholders whenever the text is new, and an
expanding IN list of n ids is n placeholders and a new text for every n: for the lists a
batch of a thousand events asks about, parsing cost more on the client than the query did
in PostgreSQL. There the list is one array parameter instead (`column = ANY(:ids)`): one
placeholder, the same text every time. SQLite has no arrays and keeps the IN list.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ARRAY, String, any_, bindparam
from sqlalchemy.engine import Connection
from sqlalchemy.sql.elements import ColumnElement


def is_one_of(
    column: Any, name: str | None, *, postgresql: bool, values: list[str] | None = None
) -> ColumnElement[bool]:
    """`column` is one of the strings bound as `name` (a list given at execution), or of
    `values` when they are given now (then `name` may be None: an anonymous parameter)."""
    if postgresql:
        return column == any_(bindparam(name, values, type_=ARRAY(String())))
    if values is not None:
        return column.in_(values)
    return column.in_(bindparam(name, expanding=True))


def on_postgresql(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"

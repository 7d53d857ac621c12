"""storage/id_lists.py: a list bound by `is_one_of` finds exactly the rows an IN list finds,
whatever its strings hold, on both databases (PostgreSQL gets it as one array literal)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from sqlalchemy import Column, Engine, MetaData, String, Table, event, select, text
from sqlalchemy.engine import Connection

from storage.db import make_engine
from storage.id_lists import array_literal, is_one_of, on_postgresql

ODD = ["cus_1", "", 'a"b', "c\\d", "x,y", "{z}", " sp ", "NULL", "null", "üñí", "it's", '\\"', "\\"]


def test_an_array_literal_reads_back_as_the_same_strings(postgres_url):
    engine = make_engine(postgres_url)
    try:
        with engine.connect() as connection:
            for values in (ODD, ["only"], [], ["cus_1", None, "cus_2"]):
                query = text("SELECT CAST(:values AS varchar[])")
                stored = connection.execute(query, {"values": array_literal(values)}).scalar_one()
                assert stored == values
    finally:
        engine.dispose()


def test_is_one_of_finds_what_an_in_list_finds(engine: Engine):
    table = Table("id_list_probe", MetaData(), Column("id", String, primary_key=True))
    with engine.begin() as connection:
        table.create(connection)
        try:
            connection.execute(table.insert(), [{"id": value} for value in ODD])
            postgresql = on_postgresql(connection)
            asked = [*ODD[::2], "missing"]
            now = select(table.c.id).where(
                is_one_of(table.c.id, None, postgresql=postgresql, values=asked)
            )
            later = select(table.c.id).where(is_one_of(table.c.id, "ids", postgresql=postgresql))
            expected = sorted(
                connection.execute(select(table.c.id).where(table.c.id.in_(asked))).scalars()
            )
            assert expected == sorted(ODD[::2])
            assert sorted(connection.execute(now).scalars()) == expected
            assert sorted(connection.execute(later, {"ids": asked}).scalars()) == expected
        finally:
            table.drop(connection)


def test_the_list_reaches_postgresql_as_an_array_not_as_text_cast_per_row(postgres_url):
    """A text parameter cast to an array inside the statement is re-read for every row a scan
    looks at (500 ms instead of 1.5 ms for a thousand ids against a few thousand rows): the
    plan must hold the list as an array value, with no text-to-array conversion left in it."""
    engine = make_engine(postgres_url)
    table = Table("id_list_plan_probe", MetaData(), Column("id", String, primary_key=True))
    try:
        with engine.begin() as connection:
            table.create(connection)
            try:
                ids = [f"cus_{n}" for n in range(50)]
                query = select(table.c.id).where(is_one_of(table.c.id, "ids", postgresql=True))
                with _explained(connection):
                    plan = "\n".join(connection.execute(query, {"ids": ids}).scalars())
            finally:
                table.drop(connection)
    finally:
        engine.dispose()
    assert "cus_49" in plan  # the list is in the plan as a value
    assert "cstring" not in plan, plan  # ...and not read from text as the scan goes


@contextlib.contextmanager
def _explained(connection: Connection) -> Iterator[None]:
    """Statements run as they would, parameters bound as they would, but PostgreSQL answers
    with its plan (EXPLAIN VERBOSE) instead of rows."""

    def explain(conn, cursor, statement, parameters, context, executemany):
        return f"EXPLAIN (VERBOSE) {statement}", parameters

    event.listen(connection, "before_cursor_execute", explain, retval=True)
    try:
        yield
    finally:
        event.remove(connection, "before_cursor_execute", explain)

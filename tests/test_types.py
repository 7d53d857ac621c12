"""storage/types.py: UTCDateTime's one-step SQLite bind writes exactly the text the generic
two steps (this type's naive UTC copy, then the dialect's DATETIME) would write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, create_engine, insert, select
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator

from storage.types import UTCDateTime

VALUES = [
    None,
    datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
    datetime(1999, 12, 31, 23, 59, 59, 1, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    datetime(2026, 3, 29, 0, 30, tzinfo=timezone(timedelta(hours=-8))),
    datetime(2026, 6, 1, tzinfo=timezone(timedelta(0))),
]


def _generic(dialect):
    """The two-step bind SQLAlchemy's TypeDecorator would build."""
    column_type = UTCDateTime().dialect_impl(dialect)
    return TypeDecorator.bind_processor(column_type, dialect)


@pytest.mark.parametrize("value", VALUES)
def test_sqlite_bind_writes_what_the_generic_bind_writes(value) -> None:
    dialect = sqlite.dialect()
    fused = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert fused is not None
    assert fused(value) == _generic(dialect)(value)


def test_sqlite_bind_refuses_naive_datetimes() -> None:
    dialect = sqlite.dialect()
    fused = UTCDateTime().dialect_impl(dialect).bind_processor(dialect)
    with pytest.raises(ValueError, match="naive datetime"):
        fused(datetime(2026, 1, 2))


def test_sqlite_round_trip_is_utc_aware() -> None:
    engine = create_engine("sqlite://")
    table = Table(
        "t", MetaData(), Column("id", Integer, primary_key=True), Column("at", UTCDateTime)
    )
    table.metadata.create_all(engine)
    with engine.begin() as connection:
        for number, value in enumerate(VALUES):
            connection.execute(insert(table).values(id=number, at=value))
        stored = dict(connection.execute(select(table.c.id, table.c.at)).all())
    assert [stored[number] for number in range(len(VALUES))] == [
        None if value is None else value.astimezone(UTC) for value in VALUES
    ]

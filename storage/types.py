"""Column types shared by every table: UTC-aware timestamps and portable JSON."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import lru_cache
from operator import attrgetter

from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

NAIVE = "naive datetime given to a UTC column; use datetime.now(UTC)"

# JSONB on PostgreSQL (indexable, compact), JSON text elsewhere.
PortableJSON = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on every backend.

    SQLite has no time zones: values are stored as naive UTC and given their zone back
    on the way out. Naive datetimes are refused on the way in, so local time can never
    sneak into the store.

    On SQLite the bind step is one function (`bind_processor`) that writes the UTC value
    straight into SQLite's DATETIME text, instead of this type's step (a naive copy) and
    then the dialect's (the text): the worker binds several timestamps per row it writes.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(NAIVE)
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def bind_processor(self, dialect):
        storage_format = getattr(self.impl_instance.dialect_impl(dialect), "_storage_format", None)
        if dialect.name != "sqlite" or not isinstance(storage_format, str):
            return super().bind_processor(dialect)
        # The dialect's `%(year)04d-...` format made positional, its fields read in one call:
        # half the cost of building the mapping, for the same text.
        names = re.findall(r"%\((\w+)\)", storage_format)
        positional = re.sub(r"%\(\w+\)", "%", storage_format)
        parts = attrgetter(*names)

        def process(value: datetime | None) -> str | None:
            if value is None:
                return None
            if value.tzinfo is None:
                raise ValueError(NAIVE)
            if value.tzinfo is not UTC:
                value = value.astimezone(UTC)
            return positional % parts(value)

        return process

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def from_unix(seconds: int | float | None) -> datetime | None:
    """Stripe timestamps are Unix seconds; 0 and None both mean "not set"."""
    if not seconds:
        return None
    return utc_datetime(seconds)


@lru_cache(maxsize=8192)
def utc_datetime(seconds: int | float) -> datetime:
    """Unix seconds as a UTC datetime, remembered: the same few timestamps come with every
    event about an object (its `created`, its periods) and with every event of the same
    second, and a lookup costs a sixth of the conversion. Datetimes are immutable, so
    sharing one is safe."""
    return datetime.fromtimestamp(seconds, UTC)

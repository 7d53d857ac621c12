"""A customer's activity timeline: what happened, when, and which event or person said so."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime


class TimelineEntry(SQLModel, table=True):
    __tablename__ = "timeline_entry"
    __table_args__ = (
        # The same event never writes the same line twice, whatever the worker retries.
        UniqueConstraint("source_key", name="uq_timeline_source_key"),
        Index("ix_timeline_customer_time", "customer_id", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=255)
    occurred_at: datetime = Field(sa_type=UTCDateTime)
    kind: str = Field(max_length=64)
    summary: str = Field(sa_type=Text)
    event_id: str | None = Field(default=None, max_length=255)
    object_id: str | None = Field(default=None, max_length=255)
    actor: str | None = Field(default=None, max_length=255)
    source_key: str = Field(max_length=512)

"""The webhook inbox: every Stripe event we accepted, keyed by its id.

A row is written before the webhook is acknowledged; the worker applies it later. The id
being the primary key is what makes a second delivery of the same event a no-op.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Index, SmallInteger, Text, text
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


class EventStatus(StrEnum):
    PENDING = "pending"  # waiting for the worker (also: failed once, waiting for its retry time)
    APPLIED = "applied"  # applied to the store
    IGNORED = (
        "ignored"  # a type billbot does not handle, or a mode it does not accept: kept, not applied
    )
    DEAD = "dead"  # failed `WORKER_MAX_ATTEMPTS` times; `billbot events retry ID` re-queues it


class StripeEvent(SQLModel, table=True):
    __tablename__ = "stripe_event"
    __table_args__ = (
        # The worker claims pending events oldest `created` first, walking this index and
        # stopping at its batch size; without it every claim sorted the whole backlog (a
        # 100k-event replay ran at a third of the speed). Partial: an applied row leaves it,
        # so it stays the size of the backlog and marking a batch applied adds no entries.
        # Queries must spell `status = 'pending'` as a literal to use it (`inbox_claim.PENDING`).
        Index(
            "ix_stripe_event_pending",
            "created",
            postgresql_where=text("status = 'pending'"),
            sqlite_where=text("status = 'pending'"),
        ),
    )

    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(max_length=255)  # no index: nothing looks events up by type
    api_version: str | None = Field(default=None, max_length=64)
    livemode: bool = False
    created: datetime = Field(sa_type=UTCDateTime)
    object_id: str | None = Field(default=None, max_length=255, index=True)
    source: str = Field(default="webhook", max_length=32)
    payload: str = Field(sa_type=Text)
    received_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    status: str = Field(default=EventStatus.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    applied_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Which lane the event queues in (0..63, from its owner: `storage.lanes.lane_of`): on
    # PostgreSQL concurrent workers claim from disjoint lanes. Rows stored before lanes
    # existed were given theirs by the migration, or are in lane 0.
    lane: int = Field(default=0, sa_type=SmallInteger, sa_column_kwargs={"server_default": "0"})

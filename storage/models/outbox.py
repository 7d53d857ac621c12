"""The outbox: every message billbot means to send to Slack, as a row.

Rows are written in the same transaction as the change that calls for them (an applied
Stripe event, a button click), so a message is never lost and never sent for a change that
rolled back. The sender (`bot/sender.py`) claims a row with a short lease, calls Slack, and
records the answer (`ts`) before anything else. `dedupe_key` is unique: asking twice for the
same message (a replayed event, a retried job) queues it once.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import PortableJSON, UTCDateTime, utcnow


class Operation(StrEnum):
    POST = "post"  # chat.postMessage; with alert_id, the alert's own message
    UPDATE = "update"  # chat.update of the alert's message (waits until it is posted)
    REPLY = "reply"  # chat.postMessage into the alert's thread (waits until it is posted)
    SUMMARY = "summary"  # a storm summary standing in for several collapsed alert posts


class OutboxStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"  # a permanent Slack error, or out of attempts; kept for `last_error`
    COLLAPSED = "collapsed"  # an alert post folded into a storm summary (`collapsed_into`)
    SUPERSEDED = "superseded"  # an update overtaken by a newer one for the same alert


class OutboxMessage(SQLModel, table=True):
    __tablename__ = "outbox_message"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
        Index("ix_outbox_queue", "status", "channel", "id"),
        Index("ix_outbox_alert", "alert_id", "operation"),
    )

    id: int | None = Field(default=None, primary_key=True)
    dedupe_key: str = Field(max_length=512)
    channel: str = Field(max_length=255)
    operation: str = Field(max_length=16)
    kind: str = Field(
        max_length=32
    )  # the alert kind (storms are per channel and kind), or a job's name
    alert_id: int | None = Field(default=None)
    payload: dict[str, Any] = Field(
        default_factory=dict, sa_type=PortableJSON
    )  # {"text", "blocks"}
    status: str = Field(default=OutboxStatus.PENDING, max_length=16)
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    claimed_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)
    collapsed_into: int | None = Field(default=None)
    sent_channel: str | None = Field(default=None, max_length=255)
    sent_ts: str | None = Field(default=None, max_length=64)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    sent_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

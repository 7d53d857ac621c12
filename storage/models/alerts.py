"""Slack alerts: one row per incident, whatever happens to it later.

`incident_key` is unique (`payment_failed:{invoice_id}`, `cancellation:{subscription_id}`,
`refund:{charge_id}:{amount_refunded}`...), so an incident can only ever have one alert and
a replayed event finds the alert it already made. `facts` is the snapshot the message is
rendered from (customer name, amounts, plan, MRR); it changes when the incident develops
(a second failed attempt), and `revision` counts those changes so each one gets its own
outbox message key. `message_channel`/`message_ts` are what Slack returned when the alert
was posted; until then, updates and thread replies wait in the outbox.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import PortableJSON, UTCDateTime, utcnow


class AlertKind(StrEnum):
    PAYMENT_FAILED = "payment_failed"
    ACTION_REQUIRED = "action_required"
    UNCOLLECTIBLE = "uncollectible"
    CANCELED = "canceled"
    CANCEL_SCHEDULED = "cancel_scheduled"
    CANCEL_UNDONE = "cancel_undone"
    UPGRADE = "upgrade"
    DOWNGRADE = "downgrade"
    PLAN_CHANGED = "plan_changed"
    TRIAL_CONVERTED = "trial_converted"
    TRIAL_ENDING = "trial_ending"
    REFUND = "refund"


class AlertState(StrEnum):
    OPEN = "open"
    HANDLED = "handled"  # someone pressed "Mark handled"
    RECOVERED = "recovered"  # the failed invoice was paid after all


class Alert(SQLModel, table=True):
    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("incident_key", name="uq_alert_incident_key"),
        Index("ix_alert_subject", "subject_id", "kind"),
        Index("ix_alert_customer_created", "customer_id", "created_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_key: str = Field(max_length=512)
    kind: str = Field(max_length=32)
    state: str = Field(default=AlertState.OPEN, max_length=16)
    customer_id: str | None = Field(default=None, max_length=255)
    subject_id: str = Field(max_length=255)  # the invoice, subscription or charge it is about
    livemode: bool = False
    channel: str = Field(max_length=255)  # as configured: a channel id or #name
    facts: dict[str, Any] = Field(default_factory=dict, sa_type=PortableJSON)
    revision: int = 0
    event_id: str = Field(max_length=255)  # the event that opened the incident
    last_event_id: str = Field(max_length=255)
    message_channel: str | None = Field(default=None, max_length=255)  # the id Slack answered with
    message_ts: str | None = Field(default=None, max_length=64)
    collapsed: bool = False  # posted as a line of a storm summary, not on its own
    handled_by: str | None = Field(default=None, max_length=255)
    handled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    recovered_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

"""Follow-up tasks made from alerts (and, later, from /paid), with an audit trail.

`due_date` is a calendar date, not an instant: "due Tuesday" means Tuesday wherever the
assignee is. Every change writes a `TaskAudit` row (who, what, when) and a timeline entry
for the customer.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text
from sqlmodel import Field, SQLModel

from storage.types import PortableJSON, UTCDateTime, utcnow


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class TaskAction(StrEnum):
    CREATED = "created"
    TAKEN = "taken"  # "Assign to me" on an alert that already had a task
    REASSIGNED = "reassigned"
    DONE = "done"
    REOPENED = "reopened"


class Task(SQLModel, table=True):
    __tablename__ = "task"
    __table_args__ = (
        Index("ix_task_assignee_status", "assignee", "status"),
        Index("ix_task_customer", "customer_id"),
        Index("ix_task_alert", "alert_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str | None = Field(default=None, max_length=255)
    alert_id: int | None = None
    title: str = Field(max_length=255)
    note: str | None = Field(default=None, sa_type=Text)
    assignee: str = Field(max_length=255)  # Slack user id
    creator: str = Field(max_length=255)  # Slack user id
    due_date: date | None = None
    status: str = Field(default=TaskStatus.OPEN, max_length=16)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    closed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    closed_by: str | None = Field(default=None, max_length=255)


class TaskAudit(SQLModel, table=True):
    __tablename__ = "task_audit"

    id: int | None = Field(default=None, primary_key=True)
    task_id: int = Field(index=True)
    actor: str = Field(max_length=255)
    action: str = Field(max_length=32)
    detail: dict[str, Any] = Field(default_factory=dict, sa_type=PortableJSON)
    at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

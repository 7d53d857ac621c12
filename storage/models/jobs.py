"""Scheduled jobs: who holds a job right now, what each run did, and what was posted once.

- `JobLease` is the SQLite lease: one row per job, held by one scheduler until it expires.
  (PostgreSQL uses advisory locks instead, see storage/jobs.py; the table stays empty there.)
- `JobRun` records every run: which fire time it was for (`scheduled_for`), who ran it, how it
  ended. Catch-up after downtime reads the last successful run from here, because
  APScheduler's in-memory job store forgets everything on restart.
- `PostedItem` is one row per thing a job has posted, under a unique key
  (`trial-reminder:{subscription_id}:{trial_end}`, `digest:weekly:{period}`...). It is
  written in the same transaction as the outbox row, so a second process, a restart or a
  retry can never post the same thing again.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import PortableJSON, UTCDateTime, utcnow


class RunStatus(StrEnum):
    RUNNING = "running"  # started; a crash leaves it so (it never counts as done)
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class RunTrigger(StrEnum):
    SCHEDULE = "schedule"  # APScheduler fired it on time (or within misfire grace)
    CATCH_UP = "catch-up"  # missed while the app was down, run once at start
    MANUAL = "manual"  # `billbot run-job NAME`


class JobLease(SQLModel, table=True):
    __tablename__ = "job_lease"

    job: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=255)
    acquired_at: datetime = Field(sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)


class JobRun(SQLModel, table=True):
    __tablename__ = "job_run"
    __table_args__ = (Index("ix_job_run_job_status_scheduled", "job", "status", "scheduled_for"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=64)
    scheduled_for: datetime = Field(sa_type=UTCDateTime)  # the fire time (now, for manual runs)
    trigger: str = Field(max_length=16)
    holder: str = Field(max_length=255)
    status: str = Field(default=RunStatus.RUNNING, max_length=16)
    summary: dict[str, Any] = Field(default_factory=dict, sa_type=PortableJSON)
    error: str | None = Field(default=None, sa_type=Text)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)


class PostedItem(SQLModel, table=True):
    __tablename__ = "posted_item"
    __table_args__ = (
        UniqueConstraint("key", name="uq_posted_item_key"),
        Index("ix_posted_item_posted_at", "posted_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    key: str = Field(max_length=512)
    job: str = Field(max_length=64)
    posted_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

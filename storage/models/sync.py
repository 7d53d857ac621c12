"""Where each backfill stands: one cursor row per Stripe object type.

Stripe's list endpoints return newest first and page with `starting_after=<last id>`.
The cursor is written in the same transaction as the page it follows, so after a crash
the store and the cursor agree: a resumed run continues after the last page that was
committed, never skipping a page and never applying one twice. `since` is the
`created[gte]` filter the run was started with; a run with another filter starts over.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Text
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow


class SyncStatus(StrEnum):
    RUNNING = "running"  # pages are being read (or the process died while reading them)
    FAILED = "failed"  # stopped on an error; the next run resumes from `starting_after`
    DONE = "done"  # read to the end; the next run starts from the newest object again


class SyncCursor(SQLModel, table=True):
    __tablename__ = "sync_cursor"

    object_type: str = Field(primary_key=True, max_length=32)  # "customers", "subscriptions", ...
    status: str = Field(default=SyncStatus.RUNNING, max_length=16)
    since: datetime | None = Field(default=None, sa_type=UTCDateTime)
    starting_after: str | None = Field(default=None, max_length=255)
    pages: int = 0
    fetched: int = 0  # objects read from Stripe
    applied: int = 0  # objects whose data was written (newer than what the store held)
    skipped: int = 0  # objects that could not be converted (logged with their id)
    started_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    last_error: str | None = Field(default=None, sa_type=Text)


class WebhookRejection(SQLModel, table=True):
    """Webhook requests refused for their signature, counted per minute.

    The endpoint only counts in memory (`bot/webhook_rejections.py`); a background thread
    adds the counts here, so a spike (a wrong or rotated secret) is visible to the health
    check in any process without a database write on the request path.
    """

    __tablename__ = "webhook_rejection"

    minute: datetime = Field(primary_key=True, sa_type=UTCDateTime)  # the minute's start, UTC
    count: int = 0

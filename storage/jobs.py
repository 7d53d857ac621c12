"""Leases, run records and posted-item keys for scheduled jobs. Keyword-only.

Two guards keep several billbot processes from posting the same thing twice:

1. A lease per job run. On PostgreSQL it is a session-level advisory lock
   (`pg_try_advisory_lock`) taken on a connection of its own and held for the whole run:
   another process asking for it gets False at once, and a process that dies loses its
   connection and with it the lock. On SQLite it is a `job_lease` row with an expiry, taken
   in a `BEGIN IMMEDIATE` transaction; a holder that died blocks the job only until the lease
   runs out.
2. A unique key per posted item (`record_posted`), written in the same transaction as the
   outbox row. The lease makes duplicates rare; the key makes them impossible.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from storage.db import is_sqlite, session_scope
from storage.models.jobs import JobLease, JobRun, PostedItem, RunStatus


def advisory_key(job: str) -> int:
    """A stable signed 64-bit key for `pg_try_advisory_lock`, from the job's name."""
    digest = hashlib.sha256(f"billbot.job:{job}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass
class Lease:
    """A held job lease; `release()` gives it back (safe to call twice)."""

    engine: Engine
    job: str
    holder: str
    connection: Connection | None = None  # PostgreSQL: the connection holding the lock

    def release(self) -> None:
        if self.connection is not None:
            try:
                self.connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": advisory_key(self.job)}
                )
                self.connection.commit()
            finally:
                self.connection.close()
                self.connection = None
            return
        with session_scope(self.engine) as session:
            session.execute(
                delete(JobLease).where(
                    col(JobLease.job) == self.job, col(JobLease.holder) == self.holder
                )
            )


def try_lease(
    *, engine: Engine, job: str, holder: str, ttl: timedelta, now: datetime
) -> Lease | None:
    """Take the job's lease, or None when another holder has it. `ttl` bounds how long a
    crashed holder can block the job on SQLite (PostgreSQL frees the lock with the session)."""
    if not is_sqlite(engine):
        connection = engine.connect()
        try:
            taken = connection.execute(
                text("SELECT pg_try_advisory_lock(:key)"), {"key": advisory_key(job)}
            ).scalar_one()
            connection.commit()
        except BaseException:
            connection.close()
            raise
        if not taken:
            connection.close()
            return None
        return Lease(engine=engine, job=job, holder=holder, connection=connection)
    with session_scope(engine) as session:
        lease = session.get(JobLease, job)
        if lease is not None and lease.holder != holder and lease.expires_at > now:
            return None
        lease = lease or JobLease(job=job, holder=holder, acquired_at=now, expires_at=now)
        lease.holder, lease.acquired_at, lease.expires_at = holder, now, now + ttl
        session.add(lease)
    return Lease(engine=engine, job=job, holder=holder)


# -- run records ------------------------------------------------------------------------------


def start_run(
    *,
    session: Session,
    job: str,
    scheduled_for: datetime,
    trigger: str,
    holder: str,
    now: datetime,
) -> JobRun:
    run = JobRun(
        job=job, scheduled_for=scheduled_for, trigger=trigger, holder=holder, started_at=now
    )
    session.add(run)
    session.flush()
    return run


def finish_run(
    *,
    session: Session,
    run_id: int,
    status: RunStatus,
    now: datetime,
    summary: dict[str, Any] | None = None,
    error: str | None = None,
) -> None:
    run = session.get(JobRun, run_id)
    if run is None:
        return
    run.status, run.finished_at, run.summary, run.error = status, now, summary or {}, error
    session.add(run)


def last_successful_run(*, session: Session, job: str) -> JobRun | None:
    """The successful run for the latest fire time: what catch-up compares against."""
    statement = (
        select(JobRun)
        .where(col(JobRun.job) == job, col(JobRun.status) == RunStatus.SUCCEEDED)
        .order_by(col(JobRun.scheduled_for).desc(), col(JobRun.id).desc())
        .limit(1)
    )
    return session.execute(statement).scalars().first()


def last_success_for(*, session: Session, job: str) -> datetime | None:
    """The fire time of the job's latest successful run, or None if it never succeeded."""
    statement = select(func.max(JobRun.scheduled_for)).where(
        col(JobRun.job) == job, col(JobRun.status) == RunStatus.SUCCEEDED
    )
    return session.execute(statement).scalar_one_or_none()


def done_for(*, session: Session, job: str, scheduled_for: datetime) -> bool:
    """Has some process already run this job successfully for this fire time (or a later one)?"""
    last = last_success_for(session=session, job=job)
    return last is not None and last >= scheduled_for


def recent_runs(*, session: Session, job: str | None = None, limit: int = 20) -> list[JobRun]:
    statement = select(JobRun).order_by(col(JobRun.started_at).desc(), col(JobRun.id).desc())
    if job is not None:
        statement = statement.where(col(JobRun.job) == job)
    return list(session.execute(statement.limit(limit)).scalars())


# -- posted items -----------------------------------------------------------------------------


def posted_keys(*, session: Session, keys: list[str]) -> set[str]:
    """Which of `keys` were posted before."""
    if not keys:
        return set()
    statement = select(PostedItem.key).where(col(PostedItem.key).in_(keys))
    return set(session.execute(statement).scalars())


def record_posted(*, session: Session, key: str, job: str, now: datetime) -> bool:
    """Remember that `key` was posted; False when it already was (by anyone, ever).

    Call it in the transaction that enqueues the message: both commit, or neither does."""
    if posted_keys(session=session, keys=[key]):
        return False
    try:
        with session.begin_nested():
            session.add(PostedItem(key=key, job=job, posted_at=now))
    except IntegrityError:  # another transaction recorded it between our look and our insert
        return False
    return True


def count_posted(*, session: Session, job: str | None = None) -> int:
    statement = select(func.count()).select_from(PostedItem)
    if job is not None:
        statement = statement.where(col(PostedItem.job) == job)
    return int(session.execute(statement).scalar_one())


def forget_posted(*, session: Session, key: str) -> None:
    """Undo `record_posted` for something that turned out not to be posted after all (an
    upload Slack refused), so a later run may try again."""
    session.execute(delete(PostedItem).where(col(PostedItem.key) == key))

"""Queries for backfill cursors (`storage.models.sync.SyncCursor`)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, select

from storage.models.sync import SyncCursor, SyncStatus


def get_cursor(*, session: Session, object_type: str) -> SyncCursor | None:
    return session.get(SyncCursor, object_type)


def list_cursors(*, session: Session) -> list[SyncCursor]:
    return list(session.exec(select(SyncCursor).order_by(SyncCursor.object_type)))


def resumable(cursor: SyncCursor | None, *, since: datetime | None) -> bool:
    """A run can continue where the last one stopped only if that run did not finish and
    read the same slice of history (same `created[gte]` filter)."""
    return cursor is not None and cursor.status != SyncStatus.DONE and cursor.since == since


def start_or_resume(
    *,
    session: Session,
    object_type: str,
    since: datetime | None,
    now: datetime,
    restart: bool = False,
) -> SyncCursor:
    """The cursor this run continues from: the unfinished one, or a fresh one."""
    cursor = get_cursor(session=session, object_type=object_type)
    if cursor is None:
        cursor = SyncCursor(object_type=object_type, started_at=now, updated_at=now)
        session.add(cursor)
    elif restart or not resumable(cursor, since=since):
        cursor.starting_after = None
        cursor.pages = cursor.fetched = cursor.applied = cursor.skipped = 0
        cursor.started_at = now
        cursor.finished_at = None
    cursor.since = since
    cursor.status = SyncStatus.RUNNING
    cursor.last_error = None
    cursor.updated_at = now
    session.flush()
    return cursor


def record_page(
    *,
    session: Session,
    object_type: str,
    last_id: str | None,
    fetched: int,
    applied: int,
    skipped: int = 0,
    now: datetime,
) -> SyncCursor:
    """Move the cursor past one page; call it in the transaction that stored the page."""
    cursor = _require(session, object_type)
    if last_id is not None:
        cursor.starting_after = last_id
    cursor.pages += 1
    cursor.fetched += fetched
    cursor.applied += applied
    cursor.skipped += skipped
    cursor.updated_at = now
    session.flush()
    return cursor


def finish(*, session: Session, object_type: str, now: datetime) -> SyncCursor:
    cursor = _require(session, object_type)
    cursor.status = SyncStatus.DONE
    cursor.finished_at = now
    cursor.updated_at = now
    session.flush()
    return cursor


def mark_failed(
    *, session: Session, object_type: str, error: str, now: datetime
) -> SyncCursor | None:
    cursor = get_cursor(session=session, object_type=object_type)
    if cursor is None:
        return None
    cursor.status = SyncStatus.FAILED
    cursor.last_error = error[:2000]
    cursor.updated_at = now
    session.flush()
    return cursor


def _require(session: Session, object_type: str) -> SyncCursor:
    cursor = get_cursor(session=session, object_type=object_type)
    if cursor is None:
        raise LookupError(f"no sync cursor for {object_type}; call start_or_resume first")
    return cursor

"""Scheduled jobs: plain functions that take their dependencies (engine, settings, `now`) and
return a `JobResult` saying what they did. `registry` names them and says when they run;
`bot/scheduler.py` runs them with APScheduler; `billbot run-job NAME` runs one by hand.

Every message a job sends goes through the outbox (`post_once`): the item keys are recorded
and the message is queued in one transaction, so the sender's pacing and 429 handling apply,
and a second process, a restart or a retry finds the keys and posts nothing.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Engine

from storage.db import session_scope
from storage.jobs import posted_keys, record_posted
from storage.models.outbox import Operation
from storage.outbox import enqueue

logger = logging.getLogger(__name__)
T = TypeVar("T")
Hook = Callable[[], None]


@dataclass
class JobResult:
    """What one run did, in lines a person can read (`billbot run-job` prints them)."""

    job: str
    posted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def fail(self, item: str, error: BaseException) -> None:
        """One item went wrong: log it with its id (never customer data), carry on."""
        logger.warning(
            "job.item_failed",
            extra={"job": self.job, "item": item, "error": type(error).__name__},
            exc_info=error,
        )
        self.failed.append(f"{item}: {type(error).__name__}")

    def lines(self) -> list[str]:
        lines = [f"posted: {line}" for line in self.posted]
        lines += [f"skipped: {line}" for line in self.skipped]
        lines += [f"failed: {line}" for line in self.failed]
        lines += self.notes
        return lines or ["nothing to do"]

    def summary(self) -> dict[str, Any]:
        return {
            "posted": self.posted,
            "skipped": self.skipped,
            "failed": self.failed,
            "notes": self.notes,
        }


class _Raced(Exception):
    """Another process recorded one of our keys between our look and our write."""


def post_once(
    *,
    engine: Engine,
    job: str,
    items: Sequence[tuple[str, T]],
    build: Callable[[list[T]], dict[str, Any]],
    channel: str,
    now: datetime,
    after_enqueue: Hook | None = None,
) -> list[T]:
    """Queue one message about the `items` (key, value) not posted before; return those.

    The keys and the outbox row commit together. `after_enqueue` runs inside the transaction
    after the row is queued: tests raise there to show a crash leaves neither behind."""
    try:
        with session_scope(engine) as session:
            seen = posted_keys(session=session, keys=[key for key, _ in items])
            fresh = [(key, value) for key, value in items if key not in seen]
            if not fresh:
                return []
            for key, _ in fresh:
                if not record_posted(session=session, key=key, job=job, now=now):
                    raise _Raced
            enqueue(
                session=session,
                dedupe_key=f"job:{job}:{_fingerprint([key for key, _ in fresh])}",
                channel=channel,
                operation=Operation.POST,
                kind=job,
                payload=build([value for _, value in fresh]),
                now=now,
            )
            if after_enqueue is not None:
                after_enqueue()
            return [value for _, value in fresh]
    except _Raced:
        logger.info("job.post_raced", extra={"job": job})
        return []


def _fingerprint(keys: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(keys)).encode()).hexdigest()[:24]

"""Housekeeping, hourly: resend undelivered messages once, prune what retention allows, and
say when the inbox backlog looks like no worker is running.

- Inbox events whose retry time has come need nothing from here: the worker's claim query
  takes every pending event with `next_attempt_at <= now`. Housekeeping counts them and
  warns when the oldest has waited longer than `STALLED_AFTER` (a stopped worker, or
  `WORKER_EMBEDDED=false` with no `billbot worker`). Dead events stay dead until
  `billbot events retry ID`: they failed `WORKER_MAX_ATTEMPTS` times.
- Outbox rows the sender gave up on (out of attempts, or a Slack error such as
  `channel_not_found`) are re-queued once each, if they are younger than `RESEND_WITHIN`
  (posted key `outbox-resend:{id}`): a fixed channel or token gets them out, a permanent
  error does not loop, and a day-old alert is not posted late.
- The webhook feed: `handlers.sync.webhook_health.check_webhook_health` warns once per
  incident when no Stripe event has arrived for `WEBHOOK_SILENCE_HOURS` while subscriptions
  are active, or when signature failures spike (a wrong `STRIPE_WEBHOOK_SECRET`).
- Pruning: applied/ignored inbox events after `INBOX_RETENTION_DAYS`, settled outbox rows
  after `OUTBOX_RETENTION_DAYS`, job runs and posted keys after `JOB_HISTORY_RETENTION_DAYS`
  (0 keeps inbox/outbox rows forever).
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import Engine

from bot.settings import Settings
from handlers.jobs import JobResult
from handlers.sync.webhook_health import check_webhook_health
from storage.db import read_scope, session_scope
from storage.jobs import posted_keys, record_posted
from storage.retention import (
    due_inbox_backlog,
    failed_messages,
    prune_inbox_events,
    prune_job_history,
    prune_outbox_messages,
    requeue_messages,
)

logger = logging.getLogger(__name__)
JOB = "housekeeping"
RESEND_WITHIN = timedelta(hours=24)
STALLED_AFTER = timedelta(minutes=10)
MAX_BATCHES = 100  # per run and table: a first prune of a huge table finishes over a few runs


def run_housekeeping(*, engine: Engine, settings: Settings, now: datetime) -> JobResult:
    result = JobResult(JOB)
    for step in (_resend_failed, _prune, _watch_inbox, _watch_webhooks):
        try:
            step(engine, settings, now, result)
        except Exception as exc:  # one step's trouble must not keep the others from running
            result.fail(step.__name__.strip("_"), exc)
    return result


def _resend_failed(engine: Engine, settings: Settings, now: datetime, result: JobResult) -> None:
    with read_scope(engine) as session:
        ids = failed_messages(session=session, since=now - RESEND_WITHIN)
        keys = {message_id: f"outbox-resend:{message_id}" for message_id in ids}
        tried = posted_keys(session=session, keys=list(keys.values()))
    fresh = [message_id for message_id, key in keys.items() if key not in tried]
    if not fresh:
        return
    with session_scope(engine) as session:
        chosen = [
            message_id
            for message_id in fresh
            if record_posted(session=session, key=keys[message_id], job=JOB, now=now)
        ]
        count = requeue_messages(session=session, message_ids=chosen, now=now)
    if count:
        result.posted.append(f"re-queued {count} undelivered Slack message(s)")


def _prune(engine: Engine, settings: Settings, now: datetime, result: JobResult) -> None:
    plans = [
        ("inbox events", settings.inbox_retention_days, prune_inbox_events),
        ("outbox messages", settings.outbox_retention_days, prune_outbox_messages),
    ]
    for what, days, prune in plans:
        if days <= 0:
            continue
        total = 0
        for _ in range(MAX_BATCHES):
            with session_scope(engine) as session:
                deleted = prune(session=session, before=now - timedelta(days=days))
            total += deleted
            if not deleted:
                break
        if total:
            result.notes.append(f"pruned {total} {what} older than {days} days")
    with session_scope(engine) as session:
        days = settings.job_history_retention_days
        history = prune_job_history(session=session, before=now - timedelta(days=days))
    if history:
        result.notes.append(f"pruned {history} job records older than {days} days")


def _watch_inbox(engine: Engine, settings: Settings, now: datetime, result: JobResult) -> None:
    with read_scope(engine) as session:
        count, oldest = due_inbox_backlog(session=session, now=now)
    if not count:
        return
    result.notes.append(f"{count} inbox event(s) due for the worker")
    if oldest is not None and now - oldest > STALLED_AFTER:
        logger.warning(
            "housekeeping.inbox_stalled",
            extra={"due": count, "oldest_age_seconds": int((now - oldest).total_seconds())},
        )
        result.notes.append("the oldest has waited over 10 minutes: is a worker running?")


def _watch_webhooks(engine: Engine, settings: Settings, now: datetime, result: JobResult) -> None:
    for warning in check_webhook_health(engine=engine, settings=settings, now=now):
        line = f"webhook warning {warning.incident_key}"
        (result.posted if warning.queued else result.skipped).append(line)

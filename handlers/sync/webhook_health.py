"""Watching the webhook feed itself: silence, and refused signatures.

`check_webhook_health` is a plain function for the scheduler's housekeeping job (and tests):

- Silence: subscriptions are active (active, trialing, past due) but no event has arrived
  *by webhook* for `WEBHOOK_SILENCE_HOURS`. Events re-fed by reconcile, replays and backfills
  do not count: they are what fills the gap, not a sign the feed works. One incident per
  last-received event: the same silence is reported once, however often the check runs; a
  new silence after events flowed again is a new incident. When no webhook event ever
  arrived, the silence is counted from the oldest stored subscription write.
- Signature failures: at least `WEBHOOK_SIGNATURE_FAILURES` requests refused for their
  signature within the last hour (counted per minute by the endpoint, `bot/webhook_rejections.py`).
  An incident is a run of refusals with no gap of an hour or more; it is reported once.

Each warning goes to `SLACK_ALERT_CHANNEL` through the outbox, keyed by its incident, in
the same transaction as the check that found it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import Engine
from sqlmodel import Session

from bot.settings import Settings
from handlers.alerts.routing import CONSOLE_CHANNEL
from handlers.slack.sync_blocks import webhook_warning_message
from handlers.sync.webhook_warning import WebhookWarning, WebhookWarningKind
from storage import outbox
from storage import sync as queries
from storage.db import session_scope
from storage.models.outbox import Operation

logger = logging.getLogger(__name__)

ACTIVE_STATUSES = ("active", "trialing", "past_due")
SPIKE_WINDOW = timedelta(hours=1)  # failures counted over this window
INCIDENT_GAP = timedelta(hours=1)  # a quiet hour ends a signature incident
LOOK_BACK = timedelta(days=7)  # how far back an incident's start is looked for

__all__ = ["WebhookWarning", "WebhookWarningKind", "check_webhook_health", "warning_channel"]


def check_webhook_health(
    *, engine: Engine, settings: Settings, now: datetime
) -> list[WebhookWarning]:
    """The feed's current problems; each new incident is queued for Slack once."""
    with session_scope(engine) as session:
        found = [
            warning
            for warning in (
                silence_warning(session, settings=settings, now=now),
                signature_warning(session, settings=settings, now=now),
            )
            if warning is not None
        ]
        return [_queue(session, warning, settings=settings, now=now) for warning in found]


def silence_warning(
    session: Session, *, settings: Settings, now: datetime
) -> WebhookWarning | None:
    active = queries.count_subscriptions(session=session, statuses=ACTIVE_STATUSES)
    if not active:
        return None
    last = queries.last_webhook_received_at(session=session)
    quiet_since = last or queries.first_subscription_written_at(session=session)
    if quiet_since is None or now - quiet_since < timedelta(hours=settings.webhook_silence_hours):
        return None
    key = f"webhook-silence:{last.isoformat() if last else 'never'}"
    return WebhookWarning(
        WebhookWarningKind.SILENCE, since=last, incident_key=key, active_subscriptions=active
    )


def signature_warning(
    session: Session, *, settings: Settings, now: datetime
) -> WebhookWarning | None:
    buckets = queries.webhook_rejections_since(session=session, since=now - LOOK_BACK)
    recent = sum(count for minute, count in buckets if minute > now - SPIKE_WINDOW)
    if recent < settings.webhook_signature_failures:
        return None
    start_index = len(buckets) - 1
    while start_index > 0 and buckets[start_index][0] - buckets[start_index - 1][0] < INCIDENT_GAP:
        start_index -= 1
    start = buckets[start_index][0]
    return WebhookWarning(
        WebhookWarningKind.SIGNATURE_FAILURES,
        since=start,
        incident_key=f"webhook-signature:{start.isoformat()}",
        count=sum(count for _, count in buckets[start_index:]),
    )


def warning_channel(settings: Settings) -> str | None:
    """The alert channel; in console mode without one, the console."""
    if settings.slack_alert_channel:
        return settings.slack_alert_channel
    return None if settings.slack_enabled else CONSOLE_CHANNEL


def _queue(
    session: Session, warning: WebhookWarning, *, settings: Settings, now: datetime
) -> WebhookWarning:
    log = {"kind": warning.kind.value, "incident_key": warning.incident_key}
    channel = warning_channel(settings)
    if channel is None:
        logger.warning("sync.webhook_health.no_channel", extra=log)
        return warning
    message = outbox.enqueue(
        session=session,
        dedupe_key=warning.incident_key,
        channel=channel,
        operation=Operation.POST,
        kind=warning.kind.value,
        payload=webhook_warning_message(warning),
        now=now,
    )
    if message is None:
        return warning
    logger.warning("sync.webhook_health.warning", extra=log)
    return replace(warning, queued=True)

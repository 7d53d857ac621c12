"""The sync domain's scheduled work, as plain functions of their dependencies.

- `run_reconcile(*, engine, settings, ...) -> DriftReport`: the nightly `reconcile` job and
  `billbot reconcile`: compare with Stripe, repair, and queue the drift report for the
  digest channel when something was wrong.
- `check_webhook_health` (handlers/sync/webhook_health.py): the housekeeping job's watch on
  the webhook feed.

The drift report goes to `SLACK_CHANNEL_DIGEST`, else `SLACK_ALERT_CHANNEL` (in console mode
without either, the console), through the outbox with a key made from the findings, so a
retried or overlapping run posts one message for the same drift.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

import stripe
from sqlalchemy import Engine
from sqlmodel import Session

from bot.settings import Settings
from bot.stripe_client import api_key, make_stripe_client
from handlers.alerts.routing import CONSOLE_CHANNEL
from handlers.revenue.ledger import policy_from_settings
from handlers.slack.sync_blocks import drift_report_message
from handlers.sync.backfill import ApplyObject
from handlers.sync.drift import DriftReport
from handlers.sync.pacing import Pacer, requests_per_second_for
from handlers.sync.reconcile import Reconciler, RefeedEvent, insert_missed_event
from handlers.sync.webhook_health import check_webhook_health
from storage.db import session_scope
from storage.models.outbox import Operation, OutboxMessage
from storage.outbox import enqueue
from storage.types import utcnow

logger = logging.getLogger(__name__)

DRIFT_REPORT_KIND = "drift_report"

__all__ = ["check_webhook_health", "post_drift_report", "run_reconcile"]


def run_reconcile(
    *,
    engine: Engine,
    settings: Settings,
    client: stripe.StripeClient | None = None,
    now: datetime | Callable[[], datetime] = utcnow,
    pacer: Pacer | None = None,
    apply_object: ApplyObject | None = None,
    refeed_event: RefeedEvent = insert_missed_event,
) -> DriftReport:
    """Reconcile the store with Stripe once and queue the drift report if needed.

    `client` defaults to one built from STRIPE_API_KEY / STRIPE_API_BASE (raises
    `bot.stripe_client.StripeKeyError` when the key is missing). `now` is a clock, or a
    fixed time the whole run is dated at. Raises `stripe.StripeError` when Stripe stops
    answering (nothing is lost; run it again). `report.queued` says whether a message
    was queued."""
    clock = now if callable(now) else (lambda: now)
    if client is None:
        client = make_stripe_client(settings)
    if pacer is None:
        pacer = Pacer(max_per_second=requests_per_second_for(api_key(settings)))
    report = Reconciler(
        engine=engine,
        client=client,
        pacer=pacer,
        apply_object=apply_object,
        refeed_event=refeed_event,
        now=clock,
        policy=policy_from_settings(settings),
    ).run()
    with session_scope(engine) as session:
        report.queued = (
            post_drift_report(session, report, settings=settings, now=clock()) is not None
        )
    return report


def drift_channel(settings: Settings) -> str | None:
    channel = settings.slack_channel_digest or settings.slack_alert_channel
    if channel is None and not settings.slack_enabled:
        return CONSOLE_CHANNEL
    return channel


def post_drift_report(
    session: Session, report: DriftReport, *, settings: Settings, now: datetime
) -> OutboxMessage | None:
    """Queue the report for Slack when events were missed or objects drifted; None when
    there is nothing to say, no channel, or the same findings were queued before."""
    if not report.worth_posting:
        return None
    channel = drift_channel(settings)
    log = {"drifted": report.drift_count, "missed_events": len(report.missed_event_ids)}
    if channel is None:
        logger.warning("sync.drift_report.no_channel", extra=log)
        return None
    message = enqueue(
        session=session,
        dedupe_key=report.dedupe_key(),
        channel=channel,
        operation=Operation.POST,
        kind=DRIFT_REPORT_KIND,
        payload=drift_report_message(report),
        now=now,
    )
    if message is not None:
        logger.info("sync.drift_report.queued", extra=log)
    return message

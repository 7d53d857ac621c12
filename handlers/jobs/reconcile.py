"""The `reconcile` job (issue 7): compare the store with Stripe, repair drift, and post a
short drift report to the digest channel only when something was wrong.

Scheduled nightly at `RECONCILE_TIME` only when `STRIPE_API_KEY` is set. The report is posted
once per local day (key `reconcile:{date}`). The Reconciler lives in `handlers/sync/`
(the backfill work); a build without it says so instead of failing.
"""

from __future__ import annotations

import importlib
from datetime import datetime

from sqlalchemy import Engine

from bot.settings import Settings
from handlers.alerts.routing import CONSOLE_CHANNEL
from handlers.jobs import Hook, JobResult, post_once

JOB = "reconcile"
NOT_INSTALLED = "reconciliation is not part of this build (handlers/sync is missing)"
NO_KEY = "STRIPE_API_KEY is not set: nothing to compare with"


def run_reconcile(
    *, engine: Engine, settings: Settings, now: datetime, after_enqueue: Hook | None = None
) -> JobResult:
    result = JobResult(JOB)
    if settings.stripe_api_key is None or not settings.stripe_api_key.get_secret_value():
        result.notes.append(NO_KEY)
        return result
    try:
        reconcile = importlib.import_module("handlers.sync.reconcile")
    except ModuleNotFoundError:
        result.notes.append(NOT_INSTALLED)
        return result
    report = reconcile.Reconciler(
        engine=engine, client=_stripe_client(settings), pacer=_pacer(settings)
    ).run()
    text = reconcile.drift_report_text(report)
    if text is None:
        result.notes.append("no drift: the store matches Stripe")
        return result
    channel = settings.slack_channel_digest or settings.slack_alert_channel
    if channel is None and not settings.slack_enabled:
        channel = CONSOLE_CHANNEL
    if channel is None:
        result.notes.append("drift found, but no channel: set SLACK_CHANNEL_DIGEST")
        return result
    day = now.astimezone(settings.timezone).date().isoformat()
    message = {
        "text": text,
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}],
    }
    posted = post_once(
        engine=engine,
        job=JOB,
        items=[(f"reconcile:{day}", message)],
        build=lambda chosen: chosen[0],
        channel=channel,
        now=now,
        after_enqueue=after_enqueue,
    )
    (result.posted if posted else result.skipped).append(f"drift report for {day} to {channel}")
    return result


def _stripe_client(settings: Settings):
    return importlib.import_module("bot.stripe_client").make_stripe_client(settings)


def _pacer(settings: Settings):
    stripe_client = importlib.import_module("bot.stripe_client")
    pacing = importlib.import_module("handlers.sync.pacing")
    rate = pacing.requests_per_second_for(stripe_client.api_key(settings))
    return pacing.Pacer(max_per_second=rate)

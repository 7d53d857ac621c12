"""The `reconcile` job (issue 7): compare the store with Stripe, repair drift, and post a
short drift report to the digest channel only when something was wrong.

Scheduled nightly at `RECONCILE_TIME` only when `STRIPE_API_KEY` is set. The report is posted
once per local day (key `reconcile:{date}`). The Reconciler itself is `handlers/sync/reconcile.py`.
"""

from __future__ import annotations

from datetime import datetime

import stripe
from sqlalchemy import Engine

from bot.settings import Settings
from bot.stripe_client import api_key, make_stripe_client
from handlers.alerts.routing import CONSOLE_CHANNEL
from handlers.jobs import Hook, JobResult, post_once
from handlers.sync.backfill import ApplyObject
from handlers.sync.pacing import Pacer, requests_per_second_for
from handlers.sync.reconcile import Reconciler, drift_report_text

JOB = "reconcile"
NO_KEY = "STRIPE_API_KEY is not set: nothing to compare with"


def run_reconcile(
    *,
    engine: Engine,
    settings: Settings,
    now: datetime,
    client: stripe.StripeClient | None = None,
    pacer: Pacer | None = None,
    apply_object: ApplyObject | None = None,
    after_enqueue: Hook | None = None,
) -> JobResult:
    """Reconcile once; post the drift report (once per local day) only when something drifted.
    `client`/`pacer`/`apply_object` default to the real ones (tests pass stand-ins)."""
    result = JobResult(JOB)
    if settings.stripe_api_key is None or not settings.stripe_api_key.get_secret_value():
        result.notes.append(NO_KEY)
        return result
    client = client or make_stripe_client(settings)
    pacer = pacer or Pacer(max_per_second=requests_per_second_for(api_key(settings)))
    report = Reconciler(
        engine=engine, client=client, pacer=pacer, apply_object=apply_object, now=lambda: now
    ).run()
    checked = ", ".join(f"{n} {kind}" for kind, n in sorted(report.checked.items()))
    result.notes.append(f"checked {checked or 'nothing'} against Stripe")
    text = drift_report_text(report)
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
    posted = post_once(
        engine=engine,
        job=JOB,
        items=[(f"reconcile:{day}", text)],
        build=lambda chosen: drift_message(chosen[0]),
        channel=channel,
        now=now,
        after_enqueue=after_enqueue,
    )
    (result.posted if posted else result.skipped).append(f"drift report for {day} to {channel}")
    return result


def drift_message(text: str) -> dict:
    return {
        "text": f"{DRIFT_TITLE}: {text.splitlines()[0]}",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": DRIFT_TITLE, "emoji": True}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}},
        ],
    }


DRIFT_TITLE = ":mag: Store repaired from Stripe"

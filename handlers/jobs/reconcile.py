"""The `reconcile` job (issue 7): the nightly run of `handlers.sync.jobs.run_reconcile`.

Scheduled at `RECONCILE_TIME` only when `STRIPE_API_KEY` is set. The reconciliation and its
drift report (queued only when something was wrong, keyed by the findings so the same drift
is reported once) live in `handlers/sync/`; this module turns the outcome into the lines
`billbot run-job reconcile` prints.
"""

from __future__ import annotations

from datetime import datetime

import stripe
from sqlalchemy import Engine

from bot.settings import Settings
from handlers.jobs import JobResult
from handlers.sync import jobs as sync_jobs
from handlers.sync.backfill import ApplyObject
from handlers.sync.pacing import Pacer

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
) -> JobResult:
    """Reconcile once; the drift report is queued only when something drifted.
    `client`/`pacer`/`apply_object` default to the real ones (tests pass stand-ins)."""
    result = JobResult(JOB)
    if settings.stripe_api_key is None or not settings.stripe_api_key.get_secret_value():
        result.notes.append(NO_KEY)
        return result
    report = sync_jobs.run_reconcile(
        engine=engine,
        settings=settings,
        client=client,
        now=now,
        pacer=pacer,
        apply_object=apply_object,
    )
    checked = ", ".join(f"{n} {kind}" for kind, n in sorted(report.checked.items()))
    result.notes.append(f"checked {checked or 'nothing'} against Stripe")
    channel = sync_jobs.drift_channel(settings)
    if not report.worth_posting:
        result.notes.append("no drift: the store matches Stripe")
    elif report.queued:
        result.posted.append(f"drift report ({report.drift_count} objects) to {channel}")
    elif channel is None:
        result.notes.append("drift found, but no channel: set SLACK_CHANNEL_DIGEST")
    else:
        result.skipped.append(f"drift report to {channel}: the same findings were reported before")
    return result

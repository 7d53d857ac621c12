"""Every scheduled job by name, when it runs, and `run_job`: one run under a lease, recorded.

Names are the job ids APScheduler uses and what `billbot run-job NAME` accepts. A spec's
`trigger(settings)` is an APScheduler trigger in `BILLBOT_TIMEZONE`, or None when the job is
not scheduled in this configuration (`reconcile` without `STRIPE_API_KEY`).

`run_job` is the one way a job runs (scheduler, catch-up, CLI):
1. take the job's lease (storage/jobs.py); another process holding it means "busy";
2. for a scheduled run, skip when some process already ran this fire time successfully
   (two schedulers whose clocks differ by a second both fire; the second finds it done);
3. record the run, call the job, record how it ended. A job that raises is recorded as
   failed and logged once; it never takes the scheduler down.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.settings import Settings
from handlers.jobs import Hook, JobResult
from handlers.jobs.digest import send_digest
from handlers.jobs.housekeeping import run_housekeeping
from handlers.jobs.reconcile import run_reconcile
from handlers.jobs.task_nudges import send_task_nudges
from handlers.jobs.trial_reminders import send_trial_reminders
from storage.db import session_scope
from storage.jobs import done_for, finish_run, start_run, try_lease
from storage.models.jobs import RunStatus, RunTrigger

logger = logging.getLogger(__name__)
LEASE_TTL = timedelta(minutes=30)  # SQLite: how long a crashed holder can block its job


@dataclass(frozen=True, slots=True)
class JobContext:
    """What a job run gets. `after_enqueue` is a fault-injection point for tests."""

    engine: Engine
    settings: Settings
    now: datetime
    slack: WebClient | None = None
    after_enqueue: Hook | None = None


@dataclass(frozen=True, slots=True)
class JobSpec:
    name: str
    description: str
    run: Callable[[JobContext], JobResult]
    trigger: Callable[[Settings], BaseTrigger | None]


def daily_at(at: time, settings: Settings, **fields: str) -> CronTrigger:
    return CronTrigger(hour=at.hour, minute=at.minute, timezone=settings.timezone, **fields)


def _digest_trigger(settings: Settings) -> CronTrigger:
    if settings.digest_frequency == "weekly":
        return daily_at(settings.digest_time, settings, day_of_week=settings.digest_weekday)
    return daily_at(settings.digest_time, settings)


def _reconcile_trigger(settings: Settings) -> CronTrigger | None:
    key = settings.stripe_api_key
    return daily_at(settings.reconcile_time, settings) if key and key.get_secret_value() else None


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(
            "trial-reminders",
            "trials ending soon, one list a day",
            lambda c: send_trial_reminders(
                engine=c.engine, settings=c.settings, now=c.now, after_enqueue=c.after_enqueue
            ),
            lambda s: daily_at(s.billbot_reminder_time, s),
        ),
        JobSpec(
            "task-nudges",
            "a DM to each assignee with tasks due or overdue",
            lambda c: send_task_nudges(
                engine=c.engine, settings=c.settings, now=c.now, after_enqueue=c.after_enqueue
            ),
            lambda s: daily_at(s.billbot_reminder_time, s),
        ),
        JobSpec(
            "digest",
            "the revenue digest (daily or weekly)",
            lambda c: send_digest(
                engine=c.engine,
                settings=c.settings,
                now=c.now,
                slack=c.slack,
                after_enqueue=c.after_enqueue,
            ),
            _digest_trigger,
        ),
        JobSpec(
            "housekeeping",
            "resend undelivered messages, prune old rows",
            lambda c: run_housekeeping(engine=c.engine, settings=c.settings, now=c.now),
            lambda s: CronTrigger(minute=5, timezone=s.timezone),
        ),
        JobSpec(
            "reconcile",
            "compare the store with Stripe, report drift (needs STRIPE_API_KEY)",
            lambda c: run_reconcile(engine=c.engine, settings=c.settings, now=c.now),
            _reconcile_trigger,
        ),
    )
}


class UnknownJob(KeyError):
    def __str__(self) -> str:
        return f"no job named {self.args[0]!r} (jobs: {', '.join(JOBS)})"


def get_job(name: str) -> JobSpec:
    try:
        return JOBS[name]
    except KeyError:
        raise UnknownJob(name) from None


@dataclass(frozen=True, slots=True)
class RunOutcome:
    job: str
    status: str  # ran | failed | busy | already-done
    result: JobResult | None = None
    run_id: int | None = None
    error: str | None = None


def run_job(
    spec: JobSpec,
    *,
    context: JobContext,
    trigger: RunTrigger,
    holder: str,
    scheduled_for: datetime | None = None,
    ttl: timedelta = LEASE_TTL,
) -> RunOutcome:
    engine, now = context.engine, context.now
    lease = try_lease(engine=engine, job=spec.name, holder=holder, ttl=ttl, now=now)
    if lease is None:
        logger.info("job.busy", extra={"job": spec.name})
        return RunOutcome(spec.name, "busy")
    try:
        with session_scope(engine) as session:
            fire = scheduled_for or now
            if trigger != RunTrigger.MANUAL and done_for(
                session=session, job=spec.name, scheduled_for=fire
            ):
                return RunOutcome(spec.name, "already-done")
            run_id = start_run(
                session=session,
                job=spec.name,
                scheduled_for=fire,
                trigger=trigger,
                holder=holder,
                now=now,
            ).id
        return _run_recorded(spec, context, run_id)
    finally:
        lease.release()


def _run_recorded(spec: JobSpec, context: JobContext, run_id: int | None) -> RunOutcome:
    log = {"job": spec.name, "run_id": run_id}
    try:
        result = spec.run(context)
    except Exception as exc:
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
        logger.error("job.failed", extra={**log, "error": type(exc).__name__}, exc_info=exc)
        with session_scope(context.engine) as session:
            finish_run(
                session=session,
                run_id=run_id or 0,
                status=RunStatus.FAILED,
                now=context.now,
                error=error,
            )
        return RunOutcome(spec.name, "failed", run_id=run_id, error=error)
    with session_scope(context.engine) as session:
        finish_run(
            session=session,
            run_id=run_id or 0,
            status=RunStatus.SUCCEEDED,
            now=context.now,
            summary=result.summary(),
        )
    logger.info(
        "job.finished",
        extra={**log, "posted": len(result.posted), "failed": len(result.failed)},
    )
    return RunOutcome(spec.name, "ran", result=result, run_id=run_id)

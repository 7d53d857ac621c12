"""APScheduler wiring: the jobs of handlers/jobs/registry.py on their triggers, in one
BackgroundScheduler, as a service `create_app` starts and stops (`billbot serve`, unless
SCHEDULER_EMBEDDED=false) or in the foreground (`billbot scheduler`).

- Explicit job ids (the registry's names), cron triggers in `BILLBOT_TIMEZONE`, so 09:00 is
  09:00 local on both sides of a DST change.
- `coalesce=True`, `max_instances=1`, `misfire_grace_time=JOB_GRACE_SECONDS`: runs missed
  while the process was busy are folded into one.
- Catch-up after downtime is ours, from the database: APScheduler's memory store forgets
  everything on restart. At start, a job whose latest fire time within the grace period is
  newer than its last successful run (job_run) runs once, now. Older misses are dropped.
- Every run goes through `run_job`: a lease per job (PostgreSQL advisory lock / SQLite lease
  row) and posted-item keys mean several processes never post the same thing twice.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.date import DateTrigger
from slack_sdk import WebClient
from sqlalchemy import Engine

from bot.settings import Settings
from handlers.jobs.registry import JOBS, JobContext, JobSpec, RunOutcome, run_job
from storage.db import read_scope
from storage.jobs import last_success_for
from storage.models.jobs import RunTrigger
from storage.types import utcnow

logger = logging.getLogger(__name__)
Clock = Callable[[], datetime]


def latest_fire_time(trigger: BaseTrigger, *, now: datetime, grace: timedelta) -> datetime | None:
    """The last time `trigger` fired in (now - grace, now], or None."""
    latest = None
    candidate = trigger.get_next_fire_time(None, now - grace)
    while candidate is not None and candidate <= now:
        latest = candidate
        candidate = trigger.get_next_fire_time(candidate, candidate + timedelta(seconds=1))
    return latest


def default_holder() -> str:
    """Who holds a lease: host, process and a per-scheduler suffix (ids only, for logs)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True, slots=True)
class PlannedJob:
    name: str
    description: str
    next_run: datetime | None  # None: not scheduled in this configuration
    last_run: datetime | None  # the fire time of the last successful run


class JobScheduler:
    """The app service (`name`, `start()`, `stop()`) that runs the scheduled jobs."""

    name = "scheduler"

    def __init__(
        self,
        *,
        settings: Settings,
        engine: Engine,
        clock: Clock = utcnow,
        slack: WebClient | None = None,
        holder: str | None = None,
    ) -> None:
        self.settings, self.engine, self.clock, self.slack = settings, engine, clock, slack
        self.holder = holder or default_holder()
        self.grace = timedelta(seconds=settings.job_grace_seconds)
        self.triggers: dict[str, BaseTrigger] = {
            name: trigger
            for name, spec in JOBS.items()
            if (trigger := spec.trigger(settings)) is not None
        }
        self._scheduler = BackgroundScheduler(
            timezone=settings.timezone,
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": max(1, settings.job_grace_seconds),
            },
        )
        self.outcomes: list[RunOutcome] = []  # the latest runs of this process, newest last

    @classmethod
    def from_settings(cls, settings: Settings, *, engine: Engine) -> JobScheduler:
        slack = None
        if settings.slack_enabled:
            from bot.slack_app import make_web_client

            slack = make_web_client(settings)
        return cls(settings=settings, engine=engine, slack=slack)

    # -- the service ----------------------------------------------------------------------

    def start(self) -> None:
        for name, trigger in self.triggers.items():
            self._scheduler.add_job(
                self.fire, trigger=trigger, id=name, name=name, args=[name], replace_existing=True
            )
        self._scheduler.start()
        now = self.clock()
        for name in self.catch_up_due(now):
            logger.info("scheduler.catch_up", extra={"job": name})
            self._scheduler.add_job(
                self.fire,
                trigger=DateTrigger(timezone=self.settings.timezone),  # now, by APScheduler's clock
                id=f"{name}:catch-up",
                name=f"{name} (catch-up)",
                args=[name, RunTrigger.CATCH_UP],
                replace_existing=True,
            )
        logger.info("scheduler.started", extra={"jobs": sorted(self.triggers)})

    def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)
        logger.info("scheduler.stopped")

    def add_listener(self, callback: Callable, mask: int) -> None:
        """APScheduler events (tests wait on EVENT_JOB_EXECUTED instead of sleeping)."""
        self._scheduler.add_listener(callback, mask)

    # -- runs -------------------------------------------------------------------------------

    def fire(self, name: str, trigger: RunTrigger = RunTrigger.SCHEDULE) -> RunOutcome:
        """One scheduled (or catch-up) run, for the latest fire time at this moment."""
        now = self.clock()
        fire_time = latest_fire_time(self.triggers[name], now=now, grace=self.grace) or now
        outcome = run_job(
            JOBS[name],
            context=self.context(now),
            trigger=trigger,
            holder=self.holder,
            scheduled_for=fire_time,
        )
        self.outcomes.append(outcome)
        del self.outcomes[:-50]
        return outcome

    def context(self, now: datetime) -> JobContext:
        return JobContext(engine=self.engine, settings=self.settings, now=now, slack=self.slack)

    def catch_up_due(self, now: datetime) -> list[str]:
        """Jobs whose latest fire time within the grace period has no successful run yet."""
        due = []
        for name, trigger in self.triggers.items():
            latest = latest_fire_time(trigger, now=now, grace=self.grace)
            if latest is None:
                continue
            with read_scope(self.engine) as session:
                last = last_success_for(session=session, job=name)
            if last is None or last < latest:
                due.append(name)
        return due

    def plan(self, now: datetime) -> list[PlannedJob]:
        """Every job with its next fire time (for `billbot jobs`), scheduled or not."""
        planned = []
        for name, spec in JOBS.items():
            trigger = self.triggers.get(name)
            with read_scope(self.engine) as session:
                last = last_success_for(session=session, job=name)
            planned.append(
                PlannedJob(
                    name=name,
                    description=spec.description,
                    next_run=trigger.get_next_fire_time(None, now) if trigger else None,
                    last_run=last,
                )
            )
        return planned


def run_now(
    spec: JobSpec, *, settings: Settings, engine: Engine, now: datetime, slack: WebClient | None
) -> RunOutcome:
    """`billbot run-job NAME`: one manual run under the same lease as scheduled runs."""
    context = JobContext(engine=engine, settings=settings, now=now, slack=slack)
    return run_job(spec, context=context, trigger=RunTrigger.MANUAL, holder=default_holder())

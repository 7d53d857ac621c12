"""`billbot jobs`: every scheduled job with its next run (local time) and last successful run.
`billbot run-job NAME`: run one job now, once, and print what it did."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime

from bot.commands.migrate import migrate_or_explain
from bot.scheduler import JobScheduler, run_now
from bot.settings import Settings
from handlers.jobs.registry import JOBS, RunOutcome, UnknownJob, get_job
from storage.db import make_engine
from storage.types import utcnow

NOT_SCHEDULED = "not scheduled"
NEVER = "never"
STATUS_TEXT = {
    "ran": "{job}: done",
    "failed": "{job}: failed ({error}); see the log",
    "busy": "{job}: another process is running it right now; nothing done",
    "already-done": "{job}: already done for this run time",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    jobs = subparsers.add_parser("jobs", help="list scheduled jobs with their next run time")
    jobs.set_defaults(handler=list_jobs)
    run = subparsers.add_parser("run-job", help="run one scheduled job now, once")
    run.add_argument("name", choices=sorted(JOBS), metavar="NAME", help=", ".join(JOBS))
    run.set_defaults(handler=run_job_now)


def local(moment: datetime | None, settings: Settings) -> str:
    if moment is None:
        return NEVER
    return f"{moment.astimezone(settings.timezone):%a %Y-%m-%d %H:%M %Z}"


def list_jobs(args: argparse.Namespace, settings: Settings, *, now: datetime | None = None) -> int:
    engine = make_engine(settings.database_url)
    try:
        if not migrate_or_explain(engine):
            return 1
        planned = JobScheduler(settings=settings, engine=engine).plan(now or utcnow())
    finally:
        engine.dispose()
    print(f"times in {settings.billbot_timezone}")
    width = max(len(job.name) for job in planned)
    for job in planned:
        when = local(job.next_run, settings) if job.next_run else NOT_SCHEDULED
        print(
            f"{job.name:<{width}}  next {when:<26}  last {local(job.last_run, settings):<26}  "
            f"{job.description}"
        )
    return 0


def run_job_now(
    args: argparse.Namespace, settings: Settings, *, now: datetime | None = None
) -> int:
    try:
        spec = get_job(args.name)
    except UnknownJob as exc:
        print(f"billbot run-job: {exc}", file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    try:
        if not migrate_or_explain(engine):
            return 1
        slack = None
        if settings.slack_enabled:
            from bot.slack_app import make_web_client

            slack = make_web_client(settings)
        outcome = run_now(spec, settings=settings, engine=engine, now=now or utcnow(), slack=slack)
    finally:
        engine.dispose()
    print_outcome(outcome)
    return 1 if outcome.status == "failed" else 0


def print_outcome(outcome: RunOutcome) -> None:
    print(STATUS_TEXT[outcome.status].format(job=outcome.job, error=outcome.error))
    if outcome.result is not None:
        for line in outcome.result.lines():
            print(f"  {line}")
        if outcome.result.posted:
            print(
                "  (messages are queued in the outbox; the sender in `billbot serve` delivers them)"
            )

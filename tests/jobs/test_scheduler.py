"""The scheduler: local-time cron triggers across DST, catch-up after downtime from the
database, and the service that `billbot serve` starts. Time is set with time-machine."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import time_machine
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED

from bot.scheduler import JobScheduler, latest_fire_time
from storage.db import session_scope
from storage.models import JobRun, RunStatus, RunTrigger
from storage.types import utcnow
from tests.jobs.conftest import add_trial, job_settings, outbox, rows
from tests.slack.conftest import FakeClock

BERLIN_0900_FRI = datetime(2026, 3, 27, 8, 0, tzinfo=UTC)


def fire_times(trigger, start: datetime, n: int) -> list[datetime]:
    times, previous = [], None
    for _ in range(n):
        previous = trigger.get_next_fire_time(previous, previous or start)
        times.append(previous.astimezone(UTC))
    return times


def test_daily_jobs_fire_at_local_time_across_both_dst_changes(sqlite_engine):
    scheduler = JobScheduler(settings=job_settings(), engine=sqlite_engine)
    trigger = scheduler.triggers["trial-reminders"]
    spring = fire_times(trigger, datetime(2026, 3, 27, 12, 0, tzinfo=UTC), 2)
    assert spring == [
        datetime(2026, 3, 28, 8, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
    ]
    autumn = fire_times(trigger, datetime(2026, 10, 24, 0, 0, tzinfo=UTC), 2)
    assert autumn == [
        datetime(2026, 10, 24, 7, 0, tzinfo=UTC),
        datetime(2026, 10, 25, 8, 0, tzinfo=UTC),
    ]
    weekly = fire_times(scheduler.triggers["digest"], datetime(2026, 3, 21, tzinfo=UTC), 2)
    assert weekly == [
        datetime(2026, 3, 23, 8, 0, tzinfo=UTC),
        datetime(2026, 3, 30, 7, 0, tzinfo=UTC),
    ]


def test_each_dst_day_run_is_recorded_for_its_own_fire_time_and_posts_once(engine):
    settings = job_settings()
    clock = FakeClock(datetime(2026, 3, 28, tzinfo=UTC))
    scheduler = JobScheduler(settings=settings, engine=engine, clock=clock)
    add_trial(engine, 1, ends=datetime(2026, 3, 28, 20, 0, tzinfo=UTC))
    add_trial(engine, 2, ends=datetime(2026, 3, 30, 20, 0, tzinfo=UTC))
    for moment in (
        datetime(2026, 3, 28, 8, 0, 1, tzinfo=UTC),  # Saturday 09:00:01 CET
        datetime(2026, 3, 28, 8, 0, 2, tzinfo=UTC),  # a second process, a second later
        datetime(2026, 3, 29, 7, 0, 1, tzinfo=UTC),  # Sunday 09:00:01 CEST
    ):
        clock.now = moment
        scheduler.fire("trial-reminders")
    assert [o.status for o in scheduler.outcomes] == ["ran", "already-done", "ran"]
    runs = [r for r in rows(engine, JobRun) if r.job == "trial-reminders"]
    assert [r.scheduled_for for r in runs] == [
        datetime(2026, 3, 28, 8, 0, tzinfo=UTC),
        datetime(2026, 3, 29, 7, 0, tzinfo=UTC),
    ]
    assert len(outbox(engine, "trial-reminders")) == 1  # trial 2 was already in Saturday's list


def test_latest_fire_time_is_within_the_grace_period_only(sqlite_engine):
    trigger = JobScheduler(settings=job_settings(), engine=sqlite_engine).triggers["task-nudges"]
    now = datetime(2026, 3, 27, 9, 30, tzinfo=UTC)  # 10:30 in Berlin
    assert latest_fire_time(trigger, now=now, grace=timedelta(hours=6)) == BERLIN_0900_FRI
    assert latest_fire_time(trigger, now=now, grace=timedelta(minutes=89)) is None
    assert latest_fire_time(trigger, now=BERLIN_0900_FRI, grace=timedelta(0)) == BERLIN_0900_FRI


def record_success(engine, job: str, at: datetime) -> None:
    with session_scope(engine) as session:
        session.add(
            JobRun(
                job=job,
                scheduled_for=at,
                trigger=RunTrigger.SCHEDULE,
                holder="earlier",
                status=RunStatus.SUCCEEDED,
                started_at=at,
                finished_at=at,
            )
        )


def test_catch_up_is_due_within_the_grace_period_and_not_beyond(sqlite_engine):
    settings = job_settings(job_grace_seconds=6 * 3600)
    for job in ("trial-reminders", "task-nudges", "housekeeping", "digest"):
        record_success(sqlite_engine, job, BERLIN_0900_FRI - timedelta(days=2))
    scheduler = JobScheduler(settings=settings, engine=sqlite_engine)
    back_at_1030 = BERLIN_0900_FRI + timedelta(hours=1, minutes=30)
    assert scheduler.catch_up_due(back_at_1030) == [
        "trial-reminders",
        "task-nudges",
        "housekeeping",
    ]
    back_at_1600 = BERLIN_0900_FRI + timedelta(hours=7)  # 09:00 is beyond the 6 h grace
    assert scheduler.catch_up_due(back_at_1600) == ["housekeeping"]  # hourly: 15:05 is recent
    record_success(sqlite_engine, "trial-reminders", BERLIN_0900_FRI)
    assert "trial-reminders" not in scheduler.catch_up_due(back_at_1030)


def start_and_wait(scheduler: JobScheduler, expected: int) -> list:
    """Start the service and wait (bounded, never sleeping) for `expected` catch-up runs."""
    finished, done = [], threading.Event()

    def listener(event) -> None:
        if event.job_id.endswith(":catch-up"):
            finished.append(event)
            if len(finished) >= expected:
                done.set()

    scheduler.add_listener(listener, EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    scheduler.start()
    try:
        assert expected == 0 or done.wait(30), "catch-up runs did not finish"
    finally:
        scheduler.stop()
    return finished


def test_a_reminder_missed_while_down_goes_out_once_when_the_app_comes_back(engine):
    settings = job_settings()
    record_success(engine, "trial-reminders", BERLIN_0900_FRI - timedelta(days=2))
    for job in ("task-nudges", "housekeeping"):
        record_success(engine, job, BERLIN_0900_FRI + timedelta(minutes=90))
    add_trial(engine, 1, ends=BERLIN_0900_FRI + timedelta(days=1))
    with time_machine.travel(BERLIN_0900_FRI + timedelta(minutes=90), tick=True):
        first = JobScheduler(settings=settings, engine=engine, clock=utcnow)
        assert first.catch_up_due(utcnow()) == ["trial-reminders"]
        start_and_wait(first, expected=1)
        assert [o.status for o in first.outcomes] == ["ran"]
        restarted = JobScheduler(settings=settings, engine=engine, clock=utcnow)
        assert restarted.catch_up_due(utcnow()) == []  # a second restart does not run it again
        start_and_wait(restarted, expected=0)
    [run] = [r for r in rows(engine, JobRun) if r.trigger == RunTrigger.CATCH_UP]
    assert (run.job, run.scheduled_for, run.status) == (
        "trial-reminders",
        BERLIN_0900_FRI,
        "succeeded",
    )
    assert len(outbox(engine, "trial-reminders")) == 1


def test_beyond_the_grace_period_nothing_runs_at_start(sqlite_engine):
    settings = job_settings(job_grace_seconds=3600)
    record_success(sqlite_engine, "trial-reminders", BERLIN_0900_FRI - timedelta(days=2))
    record_success(sqlite_engine, "task-nudges", BERLIN_0900_FRI - timedelta(days=2))
    record_success(sqlite_engine, "housekeeping", BERLIN_0900_FRI + timedelta(hours=3))
    add_trial(sqlite_engine, 1, ends=BERLIN_0900_FRI + timedelta(days=1))
    with time_machine.travel(BERLIN_0900_FRI + timedelta(hours=3), tick=True):
        scheduler = JobScheduler(settings=settings, engine=sqlite_engine)
        assert scheduler.catch_up_due(utcnow()) == []
        start_and_wait(scheduler, expected=0)
    assert outbox(sqlite_engine) == [] and scheduler.outcomes == []


def test_reconcile_is_scheduled_only_with_a_stripe_key(sqlite_engine):
    without = JobScheduler(settings=job_settings(), engine=sqlite_engine)
    assert "reconcile" not in without.triggers
    with_key = JobScheduler(settings=job_settings(stripe_api_key="sk_test_x"), engine=sqlite_engine)
    assert fire_times(with_key.triggers["reconcile"], BERLIN_0900_FRI, 1) == [
        datetime(2026, 3, 28, 2, 0, tzinfo=UTC)  # 03:00 in Berlin
    ]

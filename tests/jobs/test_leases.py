"""Leases and posted keys: PostgreSQL advisory locks and SQLite lease rows, and two schedulers
with engines of their own racing for the same run."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest

from handlers.jobs.registry import JOBS, JobContext, run_job
from storage.db import make_engine, session_scope
from storage.jobs import record_posted, try_lease
from storage.models import JobRun, RunStatus, RunTrigger
from tests.jobs.conftest import NOW, add_trial, outbox, rows

TTL = timedelta(minutes=30)


def test_a_lease_is_exclusive_across_engines_until_released(database_url):
    first, second = make_engine(database_url), make_engine(database_url)
    try:
        held = try_lease(engine=first, job="digest", holder="a", ttl=TTL, now=NOW)
        assert held is not None
        assert try_lease(engine=second, job="digest", holder="b", ttl=TTL, now=NOW) is None
        other = try_lease(engine=second, job="housekeeping", holder="b", ttl=TTL, now=NOW)
        assert other is not None  # leases are per job
        other.release()
        held.release()
        again = try_lease(engine=second, job="digest", holder="b", ttl=TTL, now=NOW)
        assert again is not None
        again.release()
        again.release()  # releasing twice is harmless
    finally:
        first.dispose()
        second.dispose()


def test_an_expired_sqlite_lease_of_a_crashed_holder_is_taken_over(sqlite_engine):
    crashed = try_lease(engine=sqlite_engine, job="digest", holder="dead", ttl=TTL, now=NOW)
    assert crashed is not None  # never released: its process "died"
    early = NOW + TTL - timedelta(seconds=1)
    assert try_lease(engine=sqlite_engine, job="digest", holder="b", ttl=TTL, now=early) is None
    later = try_lease(engine=sqlite_engine, job="digest", holder="b", ttl=TTL, now=NOW + TTL)
    assert later is not None


def test_a_postgres_lock_dies_with_its_connection(postgres_url):
    first, second = make_engine(postgres_url), make_engine(postgres_url)
    try:
        held = try_lease(engine=first, job="digest", holder="a", ttl=TTL, now=NOW)
        assert try_lease(engine=second, job="digest", holder="b", ttl=TTL, now=NOW) is None
        held.connection.invalidate()  # the process holding it is gone
        # The server frees the lock when that backend has exited, a moment after the socket
        # closed (longer on a busy machine): look again until then, for at most ten seconds.
        deadline = time.monotonic() + 10
        taken = None
        while taken is None and time.monotonic() < deadline:
            taken = try_lease(engine=second, job="digest", holder="b", ttl=TTL, now=NOW)
            time.sleep(0 if taken else 0.05)
        assert taken is not None
        taken.release()
    finally:
        first.dispose()
        second.dispose()


def test_record_posted_is_true_once_per_key(engine):
    with session_scope(engine) as session:
        assert record_posted(session=session, key="digest:weekly:2026-03-23", job="digest", now=NOW)
        assert not record_posted(
            session=session, key="digest:weekly:2026-03-23", job="digest", now=NOW
        )
    with session_scope(engine) as session:
        assert not record_posted(
            session=session, key="digest:weekly:2026-03-23", job="digest", now=NOW
        )


@pytest.mark.parametrize("rounds", [5])
def test_two_schedulers_racing_for_the_same_run_post_once(database_url, settings, rounds):
    """Each round: two threads, each with its own engine (as two processes would have), fire
    the same scheduled run at once. Whoever wins, exactly one message is queued."""
    engines = [make_engine(database_url) for _ in range(2)]
    try:
        for n in range(rounds):
            fire = NOW + timedelta(days=n)
            add_trial(engines[0], n, ends=fire + timedelta(days=1))
            barrier = threading.Barrier(2)
            outcomes = []

            def scheduler(engine, name, fire=fire, barrier=barrier, outcomes=outcomes):
                context = JobContext(engine=engine, settings=settings, now=fire)
                barrier.wait()
                outcomes.append(
                    run_job(
                        JOBS["trial-reminders"],
                        context=context,
                        trigger=RunTrigger.SCHEDULE,
                        holder=name,
                        scheduled_for=fire,
                    ).status
                )

            threads = [
                threading.Thread(target=scheduler, args=(engine, f"s{i}"))
                for i, engine in enumerate(engines)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert "ran" in outcomes and set(outcomes) <= {"ran", "busy", "already-done"}
            assert len(outbox(engines[0])) == n + 1
        succeeded = [r for r in rows(engines[0], JobRun) if r.status == RunStatus.SUCCEEDED]
        assert len({r.scheduled_for for r in succeeded}) == rounds
    finally:
        for engine in engines:
            engine.dispose()

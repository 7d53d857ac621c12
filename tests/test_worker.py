"""The worker on real SQLite and PostgreSQL: batches, order, retries with backoff, dead
events, reactions in the same transaction, and two workers racing over one inbox."""

from __future__ import annotations

import gc
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, select

from bot.settings import Settings
from bot.webhook import inbox_event
from bot.worker import GC_THRESHOLDS, Worker
from handlers.stripe.events import parse_event
from handlers.stripe.registry import AppliedEvent
from storage import inbox
from storage.db import make_engine, read_scope
from storage.models import TimelineEntry
from storage.models.inbox import EventStatus
from storage.types import utcnow
from tests import ingest_events as factory
from tests.ingest_support import (
    applications,
    counting,
    failing_handler,
    inbox_row,
    recording_handler,
    registered,
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def store(engine: Engine, *values: dict, source: str = "webhook") -> list[str]:
    settings = Settings(_env_file=None)
    events = [
        inbox_event(
            parse_event(factory.body(v)),
            payload=factory.body(v).decode(),
            source=source,
            settings=settings,
        )
        for v in values
    ]
    with engine.begin() as connection:
        inbox.insert_events(connection=connection, events=events)
    return [v["id"] for v in values]


def test_a_failing_event_retries_with_backoff_then_dies_and_never_blocks_the_others(engine):
    clock = Clock()
    good = [factory.event(factory.TEST_TYPE) for _ in range(3)]
    bad = factory.event(factory.FAILING_TYPE)
    store(engine, good[0], bad, *good[1:])
    worker = Worker(engine=engine, max_attempts=3, clock=clock)
    with (
        registered(factory.TEST_TYPE, recording_handler),
        registered(factory.FAILING_TYPE, failing_handler),
    ):
        first = worker.drain()
        row = inbox_row(engine, bad["id"])
        assert (first.applied, first.retrying) == (3, 1)
        assert (row.status, row.attempts) == (EventStatus.PENDING, 1)
        assert row.next_attempt_at == clock.now + timedelta(seconds=10)
        assert "cannot apply" in row.last_error

        assert worker.drain().claimed == 0  # not due yet
        clock.advance(10)
        assert worker.drain().retrying == 1
        assert inbox_row(engine, bad["id"]).next_attempt_at == clock.now + timedelta(seconds=20)
        clock.advance(20)
        assert worker.drain().dead == 1
    row = inbox_row(engine, bad["id"])
    assert (row.status, row.attempts, row.next_attempt_at) == (EventStatus.DEAD, 3, None)
    assert applications(engine) == {event["id"]: 1 for event in good}


def test_backoff_doubles_and_is_capped_at_an_hour():
    assert [inbox.retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert inbox.retry_delay(30) == timedelta(hours=1)


def test_events_are_applied_in_created_order_within_a_batch(engine):
    values = [
        factory.event(factory.TEST_TYPE, created=1_760_000_000 + offset)
        for offset in (30, 10, 20, 0)
    ]
    store(engine, *values)
    calls: list[str] = []
    with registered(factory.TEST_TYPE, counting(recording_handler, calls)):
        result = Worker(engine=engine).drain()
    assert result.applied == 4
    expected = [v["id"] for v in sorted(values, key=lambda v: v["created"])]
    assert calls == expected


def test_reactions_see_the_source_and_share_the_transaction(engine):
    seen: list[tuple[str, str, int]] = []

    def reaction(session, applied: AppliedEvent) -> None:
        seen.append((applied.event.id, applied.source, len(applied.changes)))
        session.add(
            TimelineEntry(
                customer_id="cus_test",
                occurred_at=utcnow(),
                kind="reaction",
                summary="reacted",
                event_id=applied.event.id,
                source_key=f"reaction:{applied.event.id}",
            )
        )
        if applied.source == "replay":
            raise RuntimeError("reactions may fail too")

    live, history = factory.event(factory.TEST_TYPE), factory.event(factory.TEST_TYPE)
    store(engine, live)
    store(engine, history, source="replay")
    with registered(factory.TEST_TYPE, recording_handler):
        result = Worker(engine=engine, reactions=[reaction]).drain()
    assert (result.applied, result.retrying) == (1, 1)
    assert (live["id"], "webhook", 1) in seen and (history["id"], "replay", 1) in seen
    # The failing reaction rolled back the handler's work for that event too.
    assert applications(engine) == {live["id"]: 1}
    with read_scope(engine) as session:
        reacted = session.execute(
            select(TimelineEntry.event_id).where(TimelineEntry.kind == "reaction")
        )
        assert list(reacted.scalars()) == [live["id"]]
    assert inbox_row(engine, history["id"]).status == EventStatus.PENDING


def test_a_stored_payload_that_is_not_an_event_is_parked_dead(sqlite_engine):
    broken = inbox.NewInboxEvent(
        id="evt_broken",
        type=factory.TEST_TYPE,
        api_version=None,
        livemode=False,
        created=utcnow(),
        object_id=None,
        payload="{not json",
        source="replay",
        received_at=utcnow(),
    )
    with sqlite_engine.begin() as connection:
        inbox.insert_events(connection=connection, events=[broken])
    assert Worker(engine=sqlite_engine).drain().dead == 1
    row = inbox_row(sqlite_engine, "evt_broken")
    assert row.status == EventStatus.DEAD and "not an event" in row.last_error


def test_two_workers_racing_over_one_inbox_apply_each_event_exactly_once(engine):
    values = [factory.event(factory.TEST_TYPE) for _ in range(300)]
    store(engine, *values)
    url = engine.url.render_as_string(hide_password=False)
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def run() -> None:
        own = make_engine(url)  # its own connections, as a separate process would have
        try:
            start.wait()
            Worker(engine=own, batch_size=10).drain()
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.dispose()

    with registered(factory.TEST_TYPE, recording_handler):
        threads = [threading.Thread(target=run) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        Worker(engine=engine).drain()  # whatever one skipped while the other held it
    assert errors == []
    assert applications(engine) == {v["id"]: 1 for v in values}


def test_the_worker_thread_wakes_on_commit_and_stops_cleanly(sqlite_engine):
    worker = Worker(engine=sqlite_engine, poll_seconds=60)
    value = factory.event(factory.TEST_TYPE)
    with registered(factory.TEST_TYPE, recording_handler):
        worker.start()
        try:
            store(sqlite_engine, value)
            worker.wake()  # without this it would look again only in a minute
            deadline = time.monotonic() + 20
            while not applications(sqlite_engine) and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            worker.stop(timeout=20)
    assert applications(sqlite_engine) == {value["id"]: 1}
    assert worker._threads == []


def _wait_until_applied(engine: Engine, ids: list[str]) -> None:
    deadline = time.monotonic() + 20
    while not set(ids) <= set(applications(engine)) and time.monotonic() < deadline:
        time.sleep(0.01)


@contextmanager
def _running_after_one_event(
    engine: Engine, worker: Worker, first: dict, then: list[dict]
) -> Iterator[None]:
    """The worker's thread started, then `first` committed (a wake-up) and applied, then
    each of `then` committed (a wake-up each); at the end the worker is stopped and its
    thread must have ended."""
    with registered(factory.TEST_TYPE, recording_handler):
        worker.start()
        thread = worker._threads[0]
        try:
            for number, value in enumerate([first, *then]):
                store(engine, value)
                worker.wake()
                if number == 0:
                    _wait_until_applied(engine, [first["id"]])
                    assert applications(engine) == {first["id"]: 1}
            yield
        finally:
            worker.stop(timeout=20)
        assert not thread.is_alive()


def test_a_worker_that_caught_up_waits_for_the_next_batch_to_gather_however_often_woken(
    sqlite_engine,
):
    """An event committed while the worker is idle is applied at once (here long before the
    two minutes of WORKER_GATHER_SECONDS). After that batch (one event, less than a full
    batch) the worker waits that long before it claims again, whatever wakes it: the events
    committed meanwhile wait. Stopping ends the wait at once."""
    worker = Worker(engine=sqlite_engine, poll_seconds=60, gather_seconds=120)
    first, *more = [factory.event(factory.TEST_TYPE) for _ in range(4)]
    with _running_after_one_event(sqlite_engine, worker, first, more):
        time.sleep(0.3)  # time enough for a claim, had a wake-up led to one
    assert applications(sqlite_engine) == {first["id"]: 1}
    assert {inbox_row(sqlite_engine, v["id"]).status for v in more} == {EventStatus.PENDING}


def test_events_committed_while_the_worker_gathers_are_applied_as_one_batch(sqlite_engine):
    """Under a stream of commits a batch holds what arrived during the wait, instead of the
    worker claiming after every commit (and on SQLite taking the write lock the webhook needs
    each time): the events committed one by one after the first batch share one batch."""
    worker = Worker(engine=sqlite_engine, poll_seconds=60, gather_seconds=2)
    first, *more = [factory.event(factory.TEST_TYPE) for _ in range(5)]
    with _running_after_one_event(sqlite_engine, worker, first, more):
        _wait_until_applied(sqlite_engine, [v["id"] for v in more])
    assert applications(sqlite_engine) == {v["id"]: 1 for v in [first, *more]}
    batches = {inbox_row(sqlite_engine, v["id"]).applied_at for v in more}
    assert len(batches) == 1
    assert inbox_row(sqlite_engine, first["id"]).applied_at not in batches


def test_the_worker_freezes_the_process_heap_once_and_raises_the_young_threshold(sqlite_engine):
    """bot.worker.tune_garbage_collector: the objects the process held when the worker
    started are frozen once (a later drain freezes nothing new), and the collector's
    thresholds are the worker's; objects made later are still collected."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    try:
        worker = Worker(engine=sqlite_engine)
        worker.drain()
        frozen = gc.get_freeze_count()
        assert frozen > 0 and gc.get_threshold() == GC_THRESHOLDS
        worker.drain()
        assert gc.get_freeze_count() <= frozen
        alive = weakref.ref(_Cyclic())
        gc.collect()
        assert alive() is None
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)


class _Cyclic:
    def __init__(self) -> None:
        self.me = self  # garbage only the cyclic collector can free

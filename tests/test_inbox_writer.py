"""The webhook's group-commit writer on SQLite: the event loop commits, but never waits for
a lock and never checkpoints; those are the writer thread's."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import httpx

from bot.app import create_app
from bot.inbox_writer import GATHER_TURNS, InboxWriter
from storage.db import SQLITE_BUSY_TIMEOUT_MS
from storage.inbox import NewInboxEvent
from storage.migrate import upgrade
from storage.types import utcnow
from tests import ingest_events as factory
from tests.ingest_support import SECRET, inbox_row, make_settings
from tests.signing import stripe_signature
from tests.test_webhook import running_server


def _database_file(engine) -> str:
    return engine.url.database


def test_a_locked_database_makes_the_request_wait_but_never_the_event_loop(sqlite_engine):
    upgrade(sqlite_engine)
    settings = make_settings(sqlite_engine.url.render_as_string(hide_password=False))
    value = factory.event("customer.created")
    body = factory.body(value)
    headers = {"Stripe-Signature": stripe_signature(body, SECRET)}
    lock = sqlite3.connect(_database_file(sqlite_engine), isolation_level=None)
    answers: list[int] = []
    with running_server(create_app(settings, engine=sqlite_engine)) as base_url:
        lock.execute("BEGIN IMMEDIATE")  # another writer holds the database
        try:
            delivery = threading.Thread(
                target=lambda: answers.append(
                    httpx.post(
                        f"{base_url}/stripe/webhook", content=body, headers=headers
                    ).status_code
                )
            )
            delivery.start()
            time.sleep(0.3)
            assert answers == [], "answered before its row could be committed"
            # The loop still serves other requests meanwhile (a read needs no lock in WAL).
            health = httpx.get(f"{base_url}/healthz", timeout=2)
            assert health.status_code == 200
            assert inbox_row(sqlite_engine, value["id"]) is None
        finally:
            lock.execute("COMMIT")
            lock.close()
        delivery.join(10)
    assert answers == [200]
    assert inbox_row(sqlite_engine, value["id"]) is not None


def _events(count: int) -> list[NewInboxEvent]:
    now = utcnow()
    return [
        NewInboxEvent(
            id=f"evt_writer{number:04d}",
            type="customer.created",
            api_version=None,
            livemode=False,
            created=now,
            object_id=f"cus_writer{number:04d}",
            payload="{}",
            source="webhook",
            received_at=now,
        )
        for number in range(count)
    ]


async def _store_all(writer: InboxWriter, events: list[NewInboxEvent]) -> list[bool | None]:
    return list(await asyncio.gather(*(writer.store(event) for event in events)))


def _checkpointed_rows(path: str) -> int:
    """Rows in the database file itself, ignoring the WAL (what a checkpoint moved there)."""
    reader = sqlite3.connect(f"file:{path}?immutable=1", uri=True)
    try:
        return reader.execute("SELECT count(*) FROM stripe_event").fetchone()[0]
    finally:
        reader.close()


def test_the_writer_thread_checkpoints_what_the_loop_committed(sqlite_engine):
    upgrade(sqlite_engine)
    writer = InboxWriter(sqlite_engine, checkpoint_rows=8)
    keep_open = sqlite_engine.connect()  # closing the last connection would checkpoint too
    try:
        writer.start()
        assert asyncio.run(_store_all(writer, _events(5))) == [True] * 5
        writer.stop()  # the thread works through its queue before it ends
        assert _checkpointed_rows(_database_file(sqlite_engine)) == 0  # 5 < 8: not yet
        writer.start()
        assert asyncio.run(_store_all(writer, _events(10)[5:])) == [True] * 5
        writer.stop()
        assert _checkpointed_rows(_database_file(sqlite_engine)) == 10
    finally:
        keep_open.close()


def test_the_loops_connection_settings_never_reach_the_pool(sqlite_engine):
    upgrade(sqlite_engine)
    writer = InboxWriter(sqlite_engine)
    writer.start()
    assert asyncio.run(_store_all(writer, _events(3))) == [True] * 3
    writer.stop()
    held = [sqlite_engine.connect() for _ in range(3)]
    try:
        for connection in held:
            driver = connection.connection.driver_connection
            assert driver.execute("PRAGMA busy_timeout").fetchone()[0] == SQLITE_BUSY_TIMEOUT_MS
            assert driver.execute("PRAGMA wal_autocheckpoint").fetchone()[0] > 0
    finally:
        for connection in held:
            connection.close()


async def _store_one_per_turn(writer: InboxWriter, events: list[NewInboxEvent]) -> list:
    """Each event handed to the writer on a turn of the loop of its own, as requests read
    by successive polls are."""
    stores = []
    for event in events:
        stores.append(asyncio.ensure_future(writer.store(event)))
        await asyncio.sleep(0)
    return list(await asyncio.gather(*stores))


def test_the_loop_waits_for_a_growing_batch_but_only_a_few_turns(sqlite_engine):
    upgrade(sqlite_engine)
    commits: list[None] = []
    writer = InboxWriter(sqlite_engine, on_commit=lambda: commits.append(None))
    events = _events(4 * GATHER_TURNS)
    writer.start()
    try:
        count = GATHER_TURNS - 2
        assert asyncio.run(_store_one_per_turn(writer, events[:count])) == [True] * count
        assert len(commits) == 1  # one commit for requests that arrived turn after turn
        commits.clear()
        count = 3 * GATHER_TURNS
        assert asyncio.run(_store_one_per_turn(writer, events[-count:])) == [True] * count
        assert 2 <= len(commits) <= 3  # a steady stream is not held back for ever
    finally:
        writer.stop()
    stored = events[: GATHER_TURNS - 2] + events[-3 * GATHER_TURNS :]
    assert all(inbox_row(sqlite_engine, event.id) is not None for event in stored)

"""Group commit for the webhook: many requests' events, one INSERT and one COMMIT.

A webhook request may only be answered 200 once its event is durable, and a commit is the
expensive part of that (one write lock on SQLite, one round trip and WAL flush on
PostgreSQL). So requests do not commit on their own: each hands its event to one writer
thread and awaits a future. The thread takes everything queued (up to `max_batch`), inserts
it with one `INSERT ... ON CONFLICT DO NOTHING`, commits, and only then resolves the futures,
with one hop back to the event loop per batch. Under load, batches grow by themselves; when
idle, a lone event is committed at once.

If a batch fails, its events are retried one by one, so a single unstorable event fails
alone; an event that still cannot be stored fails its request with `DatabaseUnavailable`
(the webhook answers 503 and Stripe retries it later).

On SQLite the event loop commits first. Handing each batch to a thread costs more than the
insert itself there (GIL hand-offs and wake-ups: about 120 µs of CPU per request against 70
on the loop, bench/README), so requests queued in one turn of the loop are inserted and
committed by one callback on the loop, on a connection of its own that never waits: its
busy timeout is 0, so a batch that finds the database locked (the worker or another process
is writing) goes to the thread, which waits as long as the engine allows; and it never
checkpoints the WAL (fsyncs), which the thread does every `checkpoint_rows` rows instead.
Any failure on the loop sends the batch down the thread's path, with its one-by-one retries.
A commit costs about as much as two rows (each one writes every index's dirty pages to
the WAL), and over HTTP one loop turn holds only the requests one poll read, so the
callback waits for more while they keep coming: it looks again a turn later as long as the
batch grew since it last looked, at most `GATHER_TURNS` times (a lone event is committed
one turn later; bench/endpoint.py cannot see this, its requests all arrive in one turn).
PostgreSQL always uses the thread: a round trip must not block the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable

from sqlalchemy import Connection, Engine

from storage import inbox
from storage.db import DatabaseUnavailable, is_sqlite

logger = logging.getLogger(__name__)

_STOP = object()
_CHECKPOINT = object()
GATHER_TURNS = 8  # at most this many extra loop turns for a batch still growing (SQLite)
CHECKPOINT_ROWS = 2_000  # about 1,000 WAL pages of inbox rows: SQLite's own default period
# True: stored now; False: a duplicate of a stored event; None: stored, or stored before
# (a batch with duplicates does not say which); an exception: could not be stored.
Outcome = bool | None | BaseException
_Item = tuple[inbox.NewInboxEvent, asyncio.Future, asyncio.AbstractEventLoop]


def describe_error(exc: BaseException) -> str:
    """The driver's own first line (SQLAlchemy's text would include the SQL parameters,
    that is, payloads, which must not reach a log)."""
    original = getattr(exc, "orig", None) or exc
    text = str(original).strip().splitlines()
    return f"{type(original).__name__}: {text[0] if text else ''}".strip()


class InboxWriter:
    name = "inbox-writer"

    def __init__(
        self,
        engine: Engine,
        *,
        max_batch: int = 512,
        on_commit: Callable[[], None] | None = None,
        commit_on_loop: bool | None = None,
        checkpoint_rows: int = CHECKPOINT_ROWS,
    ) -> None:
        self.engine = engine
        self.max_batch = max_batch
        self.on_commit = on_commit
        self.commit_on_loop = is_sqlite(engine) if commit_on_loop is None else commit_on_loop
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._connection: Connection | None = None  # the thread's own, kept between batches
        self._loop_connection: Connection | None = None  # the event loop's own (SQLite)
        self._pending: dict[asyncio.AbstractEventLoop, list[_Item]] = {}
        # per loop: (the batch's size when the callback last looked, turns waited)
        self._gathering: dict[asyncio.AbstractEventLoop, tuple[int, int]] = {}
        self.checkpoint_rows = checkpoint_rows
        self._rows_since_checkpoint = 0

    async def store(self, event: inbox.NewInboxEvent) -> bool | None:
        """Wait until `event` is committed. True if it was new, False for a duplicate id,
        None when it is stored but was in a batch with duplicates (which ones is not known).
        Raises `DatabaseUnavailable` when it cannot be stored."""
        if self._thread is None:
            raise DatabaseUnavailable("the inbox writer is not running")
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        if self.commit_on_loop:
            pending = self._pending.setdefault(loop, [])
            if not pending:
                loop.call_soon(self._commit_on_loop, loop)
            pending.append((event, future, loop))
        else:
            self._queue.put((event, future, loop))
        return await future

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="billbot-inbox-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout)
        self._thread = None
        self._close_loop_connection()

    def _close_loop_connection(self) -> None:
        if self._loop_connection is not None:
            with contextlib.suppress(Exception):
                self._loop_connection.invalidate()  # its pragmas must not reach the pool
            _close(self._loop_connection)
            self._loop_connection = None

    def _commit_on_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop's turn: insert and commit what was queued, without ever waiting; but
        first one more turn while the batch is still growing (at most `GATHER_TURNS`)."""
        size, turns = self._gathering.pop(loop, (0, 0))
        queued = len(self._pending.get(loop, ()))
        if size < queued < self.max_batch and turns < GATHER_TURNS and self._thread is not None:
            self._gathering[loop] = (queued, turns + 1)
            loop.call_soon(self._commit_on_loop, loop)
            return
        batch = self._pending.pop(loop, [])
        if not batch:
            return
        if self._thread is None:  # stopped meanwhile: nothing may be stored any more
            _set_results([(future, DatabaseUnavailable("stopped")) for _, future, _ in batch])
            return
        events = [event for event, _, _ in batch]
        try:
            new = self._insert_on_loop(events)
        except Exception as exc:  # locked by another writer, or a row to isolate: the thread's job
            if getattr(exc, "sqlite_errorcode", None) != sqlite3.SQLITE_BUSY:
                self._close_loop_connection()  # whatever broke, the next batch starts afresh
            for item in batch:
                self._queue.put(item)
            return
        _set_results(
            [
                (future, outcome)
                for (_, future, _), outcome in zip(batch, _outcomes(events, new), strict=True)
            ]
        )

    def _insert_on_loop(self, events: list[inbox.NewInboxEvent]) -> int:
        connection = self._loop_connection
        if connection is None:
            connection = self._loop_connection = self.engine.connect()
            driver = connection.connection.driver_connection
            driver.execute("PRAGMA busy_timeout=0")
            driver.execute("PRAGMA wal_autocheckpoint=0")
        driver = connection.connection.driver_connection
        try:
            driver.execute("BEGIN IMMEDIATE")
            new = inbox.append_events(connection=connection, events=events)
            driver.execute("COMMIT")
        except Exception:
            with contextlib.suppress(Exception):
                driver.execute("ROLLBACK")
            raise
        self._rows_since_checkpoint += len(events)
        if self._rows_since_checkpoint >= self.checkpoint_rows:
            self._rows_since_checkpoint = 0
            self._queue.put(_CHECKPOINT)
        if new and self.on_commit is not None:
            self.on_commit()
        return new

    def _run(self) -> None:
        stopping = False
        while not stopping:
            batch: list[_Item] = []
            item = self._queue.get()
            while True:
                if item is _STOP:
                    stopping = True
                    break
                if item is _CHECKPOINT:
                    self._checkpoint()
                else:
                    batch.append(item)
                if len(batch) >= self.max_batch:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            if batch:
                try:
                    outcomes = self._write(batch)
                except BaseException as exc:  # never leave a request waiting forever
                    logger.exception("stripe.inbox.writer_failed")
                    outcomes = [DatabaseUnavailable(type(exc).__name__)] * len(batch)
                self._resolve(batch, outcomes)
        self._disconnect()

    def _write(self, batch: list[_Item]) -> list[Outcome]:
        events = [event for event, _, _ in batch]
        try:
            new = self._insert(events)
        except Exception as exc:
            if len(events) == 1:
                return [self._failure(exc)]
            return [self._write_alone(event) for event in events]
        return _outcomes(events, new)

    def _checkpoint(self) -> None:
        """Move the WAL's committed pages into the database file, off the event loop;
        PASSIVE never waits for readers or writers."""
        try:
            if self._connection is None:
                self._connection = self.engine.connect()
            # Outside any transaction (a checkpoint cannot run inside one), so not through
            # SQLAlchemy, which would begin one.
            self._connection.connection.driver_connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception as exc:
            logger.warning("stripe.inbox.checkpoint_failed error=%s", describe_error(exc))
            self._disconnect()

    def _write_alone(self, event: inbox.NewInboxEvent) -> Outcome:
        try:
            return self._insert([event]) == 1
        except Exception as exc:
            return self._failure(exc)

    def _insert(self, events: list[inbox.NewInboxEvent]) -> int:
        if self._connection is None:
            self._connection = self.engine.connect()
        try:
            with self._connection.begin():
                new = inbox.append_events(connection=self._connection, events=events)
        except Exception:
            self._disconnect()  # the next batch starts on a fresh connection
            raise
        if new and self.on_commit is not None:
            self.on_commit()
        return new

    def _disconnect(self) -> None:
        _close(self._connection)
        self._connection = None

    @staticmethod
    def _failure(exc: Exception) -> DatabaseUnavailable:
        reason = describe_error(exc)
        logger.error("stripe.inbox.write_failed error=%s", reason)
        return DatabaseUnavailable(reason)

    @staticmethod
    def _resolve(batch: list[_Item], outcomes: list[Outcome]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future, Outcome]]] = {}
        for (_, future, loop), outcome in zip(batch, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, outcome))
        for loop, results in by_loop.items():
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_set_results, results)


def _outcomes(events: list[inbox.NewInboxEvent], new: int) -> list[Outcome]:
    if new == len(events):
        return [True] * len(events)
    if len(events) == 1:
        return [False]
    logger.info("stripe.webhook.duplicates count=%d", len(events) - new)
    return [None] * len(events)


def _close(connection: Connection | None) -> None:
    if connection is not None:
        with contextlib.suppress(Exception):
            connection.close()


def _set_results(results: list[tuple[asyncio.Future, Outcome]]) -> None:
    for future, outcome in results:
        if future.cancelled():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

"""The worker: applies inbox events to the store until told to stop.

It runs as a thread inside `billbot serve` (WORKER_EMBEDDED=true, the default) or in the
foreground as `billbot worker`; any number may run against PostgreSQL at once (see
handlers/stripe/apply.py for why none applies an event twice).

On PostgreSQL one worker applies with `WORKER_THREADS` threads (default 2). Each thread is
a worker of its own to the inbox (its own presence, its own batches from lanes no other batch
holds, see storage/lanes.py), so while one thread waits for PostgreSQL (its statements, its
commit) the other runs its batch's Python. One thread alternated about 8 s of its own CPU
with 3 to 4 s of waiting per 20,000 events; two keep the process's core busy through most of
the waiting. More threads add nothing: the Python is bound to one core by the GIL. SQLite
has one writer at a time, so there the worker always has one thread.

The webhook wakes it after each commit (`wake()`), so an event that arrives while it is idle
is applied within milliseconds; without wake-ups it polls every WORKER_POLL_SECONDS. Once it
has caught up (a batch came back smaller than WORKER_BATCH_SIZE) it waits
WORKER_GATHER_SECONDS before it claims again, however often it is woken, so that under a
stream of events a batch holds what arrived meanwhile instead of the few events of the last
commit. A batch has a fixed cost (about 10 ms of statements and Python on SQLite), and on
SQLite it holds the one write lock the webhook needs too: claiming after every commit, the
embedded worker applied batches of about 8 events back to back, and `billbot serve`
accepted about 500 events a second. Waiting 0.5 s, it accepted 2,200 to 2,800 (on
PostgreSQL 670 before, 1,100 after; docs/ingestion.md, "The worker beside the webhook").
A database outage does not kill it: it logs once, backs off, and logs again when the
database is back.

Before its first batch the worker tunes Python's cyclic garbage collector for the process
(`tune_garbage_collector`): a batch holds thousands of ORM objects for its whole unit of
work, so with the default thresholds the collector ran about fifty times per thousand
events and, in its full collections, walked every object the process had imported too:
about a fifth of the worker's CPU. Nothing relies on the collector for timing: rows,
sessions and connections are released by reference counting and explicit closes.
"""

from __future__ import annotations

import dataclasses
import gc
import logging
import threading
from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from bot.settings import Settings
from handlers.stripe.apply import ApplyOptions, BatchResult, Clock, apply_due_events
from handlers.stripe.registry import Reaction
from storage.lanes import WorkerPresence
from storage.types import utcnow

logger = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0
# Objects allocated (net) before a young collection; how many young collections before a
# middle one, and middle ones before a full one (Python's defaults: 700, 10, 10).
GC_THRESHOLDS = (50_000, 10, 10)


def tune_garbage_collector() -> None:
    """Collect once, then freeze what the process holds (modules, settings, the engine): the
    collector never walks those objects again. Then raise the young generation's threshold,
    so it collects per fifty thousand new objects instead of seven hundred. The freeze happens
    once per process; objects made after it are collected as usual.

    Fifty thousand, not ten: a batch of a thousand events keeps its parsed payloads and ORM
    rows alive until it commits, so each young collection found them still alive and moved
    them on to the middle generation, whose collections then walked them all again. With
    fifty thousand, the collector's time in 20,000 bench events on PostgreSQL (two threads)
    went from 0.60-0.65 s to 0.24-0.32 s."""
    if gc.get_freeze_count() == 0:
        gc.collect()
        gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


class Worker:
    name = "worker"

    def __init__(
        self,
        *,
        engine: Engine,
        batch_size: int = 200,
        max_attempts: int = 8,
        poll_seconds: float = 0.5,
        gather_seconds: float = 0.0,
        reactions: Sequence[Reaction] = (),
        clock: Clock = utcnow,
        threads: int = 1,
    ) -> None:
        self.engine = engine
        if engine.dialect.name != "postgresql":
            threads = 1  # one writer at a time: a second thread would only wait for the lock
        options = ApplyOptions(
            batch_size=batch_size,
            max_attempts=max_attempts,
            reactions=tuple(reactions),
            clock=clock,
        )
        self._lanes = [_Applier(engine, options) for _ in range(max(1, threads))]
        self.poll_seconds = poll_seconds
        self.gather_seconds = gather_seconds
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._totals_lock = threading.Lock()
        self.totals = BatchResult()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        engine: Engine,
        reactions: Sequence[Reaction] = (),
        clock: Clock = utcnow,
    ) -> Worker:
        return cls(
            engine=engine,
            batch_size=settings.worker_batch_size,
            max_attempts=settings.worker_max_attempts,
            poll_seconds=settings.worker_poll_seconds,
            gather_seconds=settings.worker_gather_seconds,
            reactions=reactions,
            clock=clock,
            threads=settings.worker_threads,
        )

    @property
    def threads(self) -> int:
        return len(self._lanes)

    @property
    def batch_size(self) -> int:
        return self._lanes[0].options.batch_size

    def wake(self) -> None:
        """New events were committed: look now instead of at the next poll."""
        for applier in self._lanes:
            applier.wake.set()

    def announce(self) -> None:
        """PostgreSQL: tell other workers this one's threads are running
        (storage.lanes.WorkerPresence), so that their batches leave lanes for them. Each
        batch does it first too."""
        for applier in self._lanes:
            applier.presence.announce()

    def withdraw(self) -> None:
        for applier in self._lanes:
            applier.presence.withdraw()

    def run_batch(self) -> BatchResult:
        """Apply one batch in the calling thread (as the worker's first thread)."""
        return self._run_batch(self._lanes[0])

    def _run_batch(self, applier: _Applier) -> BatchResult:
        result = applier.run_batch()
        with self._totals_lock:
            self.totals.add(result)
        return result

    def drain(self) -> BatchResult:
        """Apply batches until nothing is due (events waiting for a retry time are left).
        A run of its own: the worker's presence ends with it.

        With several threads each stops when it finds nothing it may claim; the last to
        stop found nothing due at all, because the others had withdrawn (so it was alone
        and could claim every lane)."""
        tune_garbage_collector()
        results = [BatchResult() for _ in self._lanes]

        def drain_lane(number: int) -> None:
            applier = self._lanes[number]
            try:
                while not self._stopping.is_set():
                    result = self._run_batch(applier)
                    results[number].add(result)
                    if result.claimed == 0:
                        break
            finally:
                applier.presence.withdraw()

        self._in_threads(drain_lane)
        total = BatchResult()
        for result in results:
            total.add(result)
        return total

    def run(self) -> None:
        """Loop until `stop()`; returns after the batches in hand are committed."""
        tune_garbage_collector()
        self._in_threads(self._loop)

    def _loop(self, number: int) -> None:
        applier = self._lanes[number]
        failures = 0
        while not self._stopping.is_set():
            try:
                result = self._run_batch(applier)
            except Exception as exc:
                failures += 1
                if failures == 1:
                    logger.error("worker.database_error error=%s", type(exc).__name__)
                    logger.debug("worker.database_error", exc_info=True)
                applier.sleep(min(self.poll_seconds * 2**failures, MAX_BACKOFF_SECONDS))
                continue
            if failures:
                logger.info("worker.database_recovered after_failures=%d", failures)
                failures = 0
            if result.claimed == 0:
                applier.sleep(self.poll_seconds)
            elif result.claimed < applier.options.batch_size:
                self._stopping.wait(self.gather_seconds)  # caught up: let the next batch gather
        applier.presence.withdraw()

    def _in_threads(self, target: Callable[[int], None]) -> None:
        """Run `target(0)` in the calling thread and `target(n)` for the other lanes in
        threads of their own; return when all have returned."""
        others = [
            threading.Thread(target=target, args=(number,), name=f"billbot-worker-{number}")
            for number in range(1, len(self._lanes))
        ]
        for thread in others:
            thread.start()
        try:
            target(0)
        finally:
            for thread in others:
                thread.join()

    # The app's service interface: start() with the web server, stop() when it shuts down.
    def start(self) -> None:
        self._stopping.clear()
        thread = threading.Thread(target=self.run, name="billbot-worker", daemon=True)
        self._threads = [thread]
        thread.start()
        logger.info("worker.started batch_size=%d threads=%d", self.batch_size, self.threads)

    def stop(self, timeout: float = 30.0) -> None:
        self.request_stop()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                logger.error("worker.stop_timeout seconds=%s", timeout)
        self._threads = []
        self.withdraw()
        logger.info("worker.stopped applied=%d", self.totals.applied)

    def request_stop(self) -> None:
        """From a signal handler: finish the batches in hand, then return from `run()`."""
        self._stopping.set()
        self.wake()


class _Applier:
    """One of the worker's threads, as the inbox sees it: a presence and batches of its own."""

    def __init__(self, engine: Engine, options: ApplyOptions) -> None:
        self.engine = engine
        self.presence = WorkerPresence(engine)
        self.options = dataclasses.replace(options, worker=self.presence.token)
        self.wake = threading.Event()

    def run_batch(self) -> BatchResult:
        self.presence.announce()
        return apply_due_events(engine=self.engine, options=self.options)

    def sleep(self, seconds: float) -> None:
        self.wake.wait(seconds)
        self.wake.clear()

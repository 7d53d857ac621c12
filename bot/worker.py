"""The worker: applies inbox events to the store until told to stop.

It runs as a thread inside `billbot serve` (WORKER_EMBEDDED=true, the default) or in the
foreground as `billbot worker`; any number may run against PostgreSQL at once (see
handlers/stripe/apply.py for why none applies an event twice).

The webhook wakes it after each commit (`wake()`), so events are applied within
milliseconds; without wake-ups it polls every WORKER_POLL_SECONDS. A database outage does
not kill it: it logs once, backs off, and logs again when the database is back.

Before its first batch the worker tunes Python's cyclic garbage collector for the process
(`tune_garbage_collector`): a batch holds thousands of ORM objects for its whole unit of
work, so with the default thresholds the collector ran about fifty times per thousand
events and, in its full collections, walked every object the process had imported too:
about a fifth of the worker's CPU. Nothing relies on the collector for timing: rows,
sessions and connections are released by reference counting and explicit closes.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Sequence

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
GC_THRESHOLDS = (10_000, 10, 10)


def tune_garbage_collector() -> None:
    """Collect once, then freeze what the process holds (modules, settings, the engine): the
    collector never walks those objects again. Then raise the young generation's threshold,
    so it collects per ten thousand new objects instead of seven hundred. The freeze happens
    once per process; objects made after it are collected as usual."""
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
        reactions: Sequence[Reaction] = (),
        clock: Clock = utcnow,
    ) -> None:
        self.engine = engine
        self.presence = WorkerPresence(engine)
        self.options = ApplyOptions(
            batch_size=batch_size,
            max_attempts=max_attempts,
            reactions=tuple(reactions),
            clock=clock,
            worker=self.presence.token,
        )
        self.poll_seconds = poll_seconds
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
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
            reactions=reactions,
            clock=clock,
        )

    def wake(self) -> None:
        """New events were committed: look now instead of at the next poll."""
        self._wake.set()

    def announce(self) -> None:
        """PostgreSQL: tell other workers this one is running (storage.lanes.WorkerPresence),
        so that their batches leave lanes for it. Each batch does it first too."""
        self.presence.announce()

    def withdraw(self) -> None:
        self.presence.withdraw()

    def run_batch(self) -> BatchResult:
        self.presence.announce()
        result = apply_due_events(engine=self.engine, options=self.options)
        self.totals.add(result)
        return result

    def drain(self) -> BatchResult:
        """Apply batches until nothing is due (events waiting for a retry time are left).
        A run of its own: the worker's presence ends with it."""
        total = BatchResult()
        tune_garbage_collector()
        try:
            while not self._stopping.is_set():
                result = self.run_batch()
                total.add(result)
                if result.claimed == 0:
                    break
        finally:
            self.presence.withdraw()
        return total

    def run(self) -> None:
        """Loop until `stop()`; returns after the batch in hand is committed."""
        failures = 0
        tune_garbage_collector()
        while not self._stopping.is_set():
            try:
                result = self.run_batch()
            except Exception as exc:
                failures += 1
                if failures == 1:
                    logger.error("worker.database_error error=%s", type(exc).__name__)
                    logger.debug("worker.database_error", exc_info=True)
                self._sleep(min(self.poll_seconds * 2**failures, MAX_BACKOFF_SECONDS))
                continue
            if failures:
                logger.info("worker.database_recovered after_failures=%d", failures)
                failures = 0
            if result.claimed == 0:
                self._sleep(self.poll_seconds)
        self.presence.withdraw()

    def _sleep(self, seconds: float) -> None:
        self._wake.wait(seconds)
        self._wake.clear()

    # The app's service interface: start() with the web server, stop() when it shuts down.
    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self.run, name="billbot-worker", daemon=True)
        self._thread.start()
        logger.info("worker.started batch_size=%d", self.options.batch_size)

    def stop(self, timeout: float = 30.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                logger.error("worker.stop_timeout seconds=%s", timeout)
            self._thread = None
        self.presence.withdraw()
        logger.info("worker.stopped applied=%d", self.totals.applied)

    def request_stop(self) -> None:
        """From a signal handler: finish the batch in hand, then return from `run()`."""
        self._stopping.set()
        self._wake.set()

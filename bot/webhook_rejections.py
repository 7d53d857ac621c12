"""Counting webhook requests refused for their signature, off the request path.

A wrong `STRIPE_WEBHOOK_SECRET` (a rotation done halfway, a secret from another endpoint)
shows as a run of 400s that nothing else notices: Stripe retries, then gives up. The endpoint
only adds one to an in-memory count per minute (a lock and a dict); `run`, the body of a
service thread (`bot.services.ThreadService`), adds the counts to `webhook_rejection` every
few seconds and when it stops, so the health
check (`handlers.sync.webhook_health`) sees them from any process. If the database cannot
take them, they are kept for the next flush. Counts made in the last seconds before a crash
are lost; a spike that matters lasts longer than that.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from storage.db import session_scope
from storage.sync import add_webhook_rejections
from storage.types import utcnow

logger = logging.getLogger(__name__)


class RejectionCounter:
    def __init__(
        self,
        engine: Engine,
        *,
        flush_seconds: float = 10.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.flush_seconds = flush_seconds
        self.clock = clock
        self._counts: dict[datetime, int] = {}
        self._lock = threading.Lock()

    def record(self) -> None:
        """One refused request, now. Cheap enough for the hot path: no I/O."""
        minute = self.clock().replace(second=0, microsecond=0)
        with self._lock:
            self._counts[minute] = self._counts.get(minute, 0) + 1

    def pending(self) -> int:
        with self._lock:
            return sum(self._counts.values())

    def flush(self) -> int:
        """Add the counts so far to the database; returns how many were saved."""
        with self._lock:
            counts, self._counts = self._counts, {}
        if not counts:
            return 0
        try:
            with session_scope(self.engine) as session:
                add_webhook_rejections(session=session, counts=counts)
        except Exception as exc:
            with self._lock:
                for minute, count in counts.items():
                    self._counts[minute] = self._counts.get(minute, 0) + count
            logger.warning(
                "stripe.webhook.rejections_not_saved", extra={"error": type(exc).__name__}
            )
            return 0
        saved = sum(counts.values())
        logger.info("stripe.webhook.rejections_saved", extra={"count": saved})
        return saved

    def run(self, stop: threading.Event) -> None:
        """Flush every `flush_seconds` until `stop` is set, then once more."""
        while not stop.wait(self.flush_seconds):
            self.flush()
        self.flush()

"""Background services that live beside the web server, and the reactions every worker runs.

This is the one place that decides what a running billbot does after it applies an event
(the MRR ledger, then alerts) and which threads run beside `billbot serve`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.settings import Settings
from handlers.alerts import AlertReaction
from handlers.revenue.ledger import mrr_ledger_reaction
from handlers.stripe.registry import Reaction

logger = logging.getLogger(__name__)


def standard_reactions(settings: Settings) -> tuple[Reaction, ...]:
    """What every worker (embedded, `billbot worker`, `billbot replay`) runs after an event:
    the ledger first, so an alert written in the same transaction sees today's MRR."""
    return (mrr_ledger_reaction(settings), AlertReaction(settings))


class ThreadService:
    """Runs `target(stop_event)` in a daemon thread; `stop()` sets the event and joins."""

    def __init__(
        self, name: str, target: Callable[[threading.Event], None], *, join_seconds: float = 10
    ) -> None:
        self.name = name
        self._target = target
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._join_seconds = join_seconds

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"billbot-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._target(self._stop)
        except Exception:
            logger.exception("service.crashed", extra={"service": self.name})

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._join_seconds)
            self._thread = None

"""Slack alerts: a reaction that runs after the worker applies a Stripe event.

Plug it into the worker's `reactions` as `AlertReaction(settings)` (or bind
`enqueue_alerts` with functools.partial). It writes alert and outbox rows in the worker's
transaction; `bot/sender.py` delivers them. Only live (webhook) events alert: history
(replay, backfill) and events reconciliation found missed never post; the drift report
tells about those.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.settings import Settings
from handlers.alerts.incidents import apply_development
from handlers.alerts.rules import RULES, developments
from handlers.stripe.registry import AppliedEvent
from storage.types import utcnow

ALERTING_EVENT_TYPES = frozenset(RULES)


def enqueue_alerts(
    session: Session, applied: AppliedEvent, settings: Settings, *, now: datetime | None = None
) -> None:
    if not applied.is_live:
        return
    found = developments(session, applied)
    if not found:  # most events: no clock read
        return
    moment = now or utcnow()
    for development in found:
        apply_development(session, development, event=applied.event, settings=settings, now=moment)


class AlertReaction:
    """`Reaction`-shaped: `reaction(session, applied)`, with the settings bound."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def __call__(self, session: Session, applied: AppliedEvent) -> None:
        enqueue_alerts(session, applied, self.settings)


__all__ = ["ALERTING_EVENT_TYPES", "AlertReaction", "enqueue_alerts"]

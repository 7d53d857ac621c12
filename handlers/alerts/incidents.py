"""Turn developments into alert rows and outbox messages, in the caller's transaction.

A new incident posts one top-level message. A development of an existing incident (a
second failed attempt, recovery, a scheduled cancellation that happened) updates that
message and replies in its thread. A replayed or stale event changes nothing: the
incident's "progress" (kind, state, attempt, cancellation date) is compared before and after.
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from bot.settings import Settings
from handlers.alerts.render import card_for, new_alert_card
from handlers.alerts.routing import big_enough, channel_for
from handlers.alerts.rules import Development, get_alert_by_incident
from handlers.slack import blocks
from handlers.slack.cards import AlertFacts
from handlers.stripe.events import StripeEvent
from storage.alerts import open_alert
from storage.models.alerts import Alert, AlertState
from storage.models.outbox import Operation
from storage.outbox import queue_at_commit, queue_message

logger = logging.getLogger(__name__)


def progress(kind: str, state: str, facts: AlertFacts) -> tuple[object, ...]:
    return kind, state, facts.attempt, facts.cancel_at


def apply_development(
    session: Session,
    development: Development,
    *,
    event: StripeEvent,
    settings: Settings,
    now: datetime,
) -> None:
    """Open the incident's alert, develop it, or do nothing (nothing changed)."""
    if development.existing is None:
        _open(session, development, event=event, settings=settings, now=now)
    else:
        _develop(session, development, development.existing, event=event, now=now)


def _open(
    session: Session,
    development: Development,
    *,
    event: StripeEvent,
    settings: Settings,
    now: datetime,
) -> None:
    """Open a new incident's alert; its post is queued once the alert is in (the worker's
    unit of work writes the alerts it opens together: `storage.alerts.open_alert`)."""
    log = {
        "event_id": event.id,
        "incident_key": development.incident_key,
        "kind": development.kind.value,
    }
    if not development.may_open or get_alert_by_incident(
        session=session, incident_key=development.incident_key, subject_id=development.subject_id
    ):
        return
    if not big_enough(development.kind, development.amount, settings):
        logger.info("alerts.below_minimum", extra=log)
        return
    channel = channel_for(development.kind, settings)
    if channel is None:
        logger.warning("alerts.no_channel", extra=log)
        return
    facts = development.facts.to_json()

    def post(alert_id: int) -> None:
        payload = blocks.alert_message(
            new_alert_card(alert_id=alert_id, kind=development.kind, facts=facts)
        )
        queue_at_commit(
            session=session,
            dedupe_key=f"alert:{alert_id}:post",
            channel=channel,
            operation=Operation.POST,
            kind=development.kind,
            payload=payload,
            alert_id=alert_id,
            now=now,
        )
        logger.info("alerts.opened", extra={**log, "alert_id": alert_id})

    open_alert(
        session=session,
        values={
            "incident_key": development.incident_key,
            "kind": development.kind,
            "customer_id": development.customer_id,
            "subject_id": development.subject_id,
            "livemode": event.livemode,
            "channel": channel,
            "facts": facts,
            "event_id": event.id,
            "last_event_id": event.id,
            "created_at": now,
            "updated_at": now,
        },
        then=post,
    )


def _develop(
    session: Session, development: Development, alert: Alert, *, event: StripeEvent, now: datetime
) -> None:
    state = development.state or AlertState(alert.state)
    before = progress(alert.kind, alert.state, AlertFacts.model_validate(alert.facts))
    if alert.last_event_id == event.id or before == progress(
        development.kind, state, development.facts
    ):
        return
    previous_kind = alert.kind
    alert.kind, alert.state, alert.facts = development.kind, state, development.facts.to_json()
    if state is AlertState.RECOVERED and alert.recovered_at is None:
        alert.recovered_at = development.facts.paid_at or now
    alert.last_event_id, alert.updated_at = event.id, now
    bump(
        session,
        alert,
        reply=blocks.development_reply(card_for(session, alert), previous_kind=previous_kind),
        now=now,
    )
    logger.info(
        "alerts.developed", extra={"event_id": event.id, "alert_id": alert.id, "kind": alert.kind}
    )


def bump(
    session: Session,
    alert: Alert,
    *,
    reply: blocks.Message | None,
    now: datetime,
    reply_key: str | None = None,
) -> None:
    """Record a new revision of the alert: queue the re-rendered message, and a thread reply."""
    alert.revision += 1
    alert.updated_at = now
    session.add(alert)  # written at the caller's next flush or commit; nothing here reads it back
    payload = blocks.alert_message(card_for(session, alert))
    queue_message(
        session=session,
        dedupe_key=f"alert:{alert.id}:update:{alert.revision}",
        channel=alert.channel,
        operation=Operation.UPDATE,
        kind=alert.kind,
        payload=payload,
        alert_id=alert.id,
        now=now,
    )
    if reply is not None:
        queue_message(
            session=session,
            dedupe_key=reply_key or f"alert:{alert.id}:reply:{alert.revision}",
            channel=alert.channel,
            operation=Operation.REPLY,
            kind=alert.kind,
            payload=reply,
            alert_id=alert.id,
            now=now,
        )

"""Shared pieces for the ingestion tests: settings, an app client, inbox reads, and test
handlers that record each application in a real table (so "applied once" is counted in
the database, not in a Python list)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from bot.app import create_app
from bot.settings import Settings
from bot.webhook import inbox_event
from handlers.stripe.events import StripeEvent, parse_event
from handlers.stripe.registry import HANDLERS, Change, Handler
from storage import inbox
from storage.db import read_scope
from storage.models import TimelineEntry
from storage.models.inbox import StripeEvent as InboxEvent

SECRET = "whsec_test_current"
OLD_SECRET = "whsec_test_previous"


def make_settings(database_url: str, **overrides) -> Settings:
    values = {
        "database_url": database_url,
        "stripe_webhook_secret": SECRET,
        "worker_embedded": False,
        "worker_poll_seconds": 0.05,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@contextmanager
def app_client(engine: Engine, **overrides) -> Iterator[TestClient]:
    settings = make_settings(engine.url.render_as_string(hide_password=False), **overrides)
    with TestClient(create_app(settings, engine=engine)) as client:
        yield client


def inbox_rows(engine: Engine) -> list[InboxEvent]:
    with read_scope(engine) as session:
        rows = list(
            session.execute(
                select(InboxEvent).order_by(InboxEvent.created, InboxEvent.id)
            ).scalars()
        )
        session.expunge_all()  # keep them readable after read_scope rolls back
        return rows


def inbox_row(engine: Engine, event_id: str) -> InboxEvent | None:
    with read_scope(engine) as session:
        row = session.get(InboxEvent, event_id)
        session.expunge_all()
        return row


def applications(engine: Engine) -> dict[str, int]:
    """How many times each event was applied by `recording_handler` (committed rows)."""
    with read_scope(engine) as session:
        rows = session.execute(
            select(TimelineEntry.event_id, func.count())
            .where(TimelineEntry.kind == "test")
            .group_by(TimelineEntry.event_id)
        )
        return {event_id: count for event_id, count in rows}


def recording_handler(session, event: StripeEvent) -> list[Change]:
    session.add(
        TimelineEntry(
            customer_id="cus_test",
            occurred_at=event.created,
            kind="test",
            summary=event.type,
            event_id=event.id,
            source_key=f"{event.id}:{uuid.uuid4().hex}",  # a second application shows as a second row
        )
    )
    return [
        Change(object_type="customer", object_id="cus_test", customer_id="cus_test", applied=True)
    ]


def failing_handler(session, event: StripeEvent) -> list[Change]:
    raise RuntimeError(f"cannot apply {event.id}")


@contextmanager
def registered(event_type: str, handler: Handler) -> Iterator[Handler]:
    """Register a test handler for a made-up type, and take it away again."""
    assert event_type not in HANDLERS
    HANDLERS[event_type] = handler
    try:
        yield handler
    finally:
        HANDLERS.pop(event_type, None)


def counting(handler: Handler, calls: list[str]) -> Callable:
    def wrapper(session, event):
        calls.append(event.id)
        return handler(session, event)

    return wrapper


def new_inbox_events(
    events: Sequence[dict], *, source: str = "webhook", lane: int | None = None
) -> list[inbox.NewInboxEvent]:
    """Stripe event dicts as the webhook (or reconcile, `source`) stores them; with `lane`,
    all in that lane (as events stored before lanes existed are in lane 0)."""
    settings = Settings(_env_file=None)
    rows = []
    for event in events:
        body = json.dumps(event)
        rows.append(inbox_event(parse_event(body), payload=body, source=source, settings=settings))
    if lane is not None:
        rows = [row._replace(lane=lane) for row in rows]
    return rows


def receive_events(
    engine: Engine, events: Sequence[dict], *, source: str = "webhook", lane: int | None = None
) -> None:
    """Store the events in the inbox in one transaction (`new_inbox_events`)."""
    with engine.begin() as connection:
        inbox.insert_events(
            connection=connection, events=new_inbox_events(events, source=source, lane=lane)
        )

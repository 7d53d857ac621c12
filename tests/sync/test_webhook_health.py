"""The webhook feed watch: silence while subscriptions are active, and a spike of refused
signatures (counted by the real endpoint), each posted once per incident."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import select

from bot.webhook_rejections import RejectionCounter
from handlers.slack.sync_blocks import SIGNATURE_HEADER, SILENCE_HEADER
from handlers.stripe.objects import apply_object
from handlers.sync.webhook_health import WebhookWarningKind, check_webhook_health
from storage.db import read_scope, session_scope
from storage.models import StripeEvent, WebhookRejection
from storage.types import utcnow
from tests import ingest_events as factory
from tests.fakes import stripe_objects as so
from tests.ingest_support import SECRET, app_client, make_settings
from tests.signing import stripe_signature
from tests.sync.support import SLACK, outbox_rows

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def settings_for(engine, **overrides):
    url = engine.url.render_as_string(hide_password=False)
    return make_settings(url, **SLACK, **overrides)


def active_subscription(engine) -> None:
    with session_scope(engine) as session:
        apply_object(
            session,
            so.subscription(1, customer_id="cus_1", created=so.EPOCH),
            version_at=T0 - timedelta(days=10),
        )


def webhook_event_received(engine, n: int, at: datetime, *, source: str = "webhook") -> None:
    with session_scope(engine) as session:
        session.add(
            StripeEvent(
                id=f"evt_{n}", type="customer.updated", created=at, received_at=at, payload="{}", source=source
            )
        )  # fmt: skip


def test_silence_while_subscriptions_are_active_is_posted_once_per_incident(engine):
    settings = settings_for(engine, webhook_silence_hours=24)
    webhook_event_received(engine, 1, T0)
    assert check_webhook_health(engine=engine, settings=settings, now=T0 + timedelta(days=3)) == []

    active_subscription(engine)
    webhook_event_received(engine, 2, T0 + timedelta(hours=30), source="reconcile")  # not a sign
    assert (
        check_webhook_health(engine=engine, settings=settings, now=T0 + timedelta(hours=23)) == []
    )
    [first] = check_webhook_health(engine=engine, settings=settings, now=T0 + timedelta(hours=25))
    [same] = check_webhook_health(engine=engine, settings=settings, now=T0 + timedelta(hours=40))

    assert (first.kind, first.since, first.queued, same.queued) == (
        WebhookWarningKind.SILENCE, T0, True, False,
    )  # fmt: skip
    [message] = outbox_rows(engine)
    assert (message.channel, message.kind) == ("#alerts", "webhook_silence")
    assert message.payload["text"] == SILENCE_HEADER
    assert "1 subscriptions are active" in message.payload["blocks"][1]["text"]["text"]

    webhook_event_received(engine, 3, T0 + timedelta(days=2))  # events flowed again
    assert (
        check_webhook_health(engine=engine, settings=settings, now=T0 + timedelta(days=2, hours=1))
        == []
    )
    [again] = check_webhook_health(
        engine=engine, settings=settings, now=T0 + timedelta(days=3, hours=1)
    )
    assert again.queued and len(outbox_rows(engine)) == 2


def bad_signature_posts(engine, count: int, **overrides) -> None:
    body = factory.body(factory.event("customer.updated"))
    with app_client(engine, **overrides) as client:
        for _ in range(count):
            response = client.post(
                "/stripe/webhook",
                content=body,
                headers={"Stripe-Signature": stripe_signature(body, "whsec_another_endpoint")},
            )
            assert response.status_code == 400
        good = client.post(
            "/stripe/webhook",
            content=body,
            headers={"Stripe-Signature": stripe_signature(body, SECRET)},
        )
        assert good.status_code == 200  # a good signature is not counted


def rejections(engine) -> int:
    with read_scope(engine) as session:
        return sum(row.count for row in session.exec(select(WebhookRejection)))


def test_a_wrong_secret_is_counted_by_the_endpoint_and_warned_about_once(engine):
    settings = settings_for(engine, webhook_signature_failures=5)
    bad_signature_posts(engine, 4)
    assert rejections(engine) == 4  # flushed when the app stopped
    assert check_webhook_health(engine=engine, settings=settings, now=utcnow()) == []

    bad_signature_posts(engine, 3)
    [warning] = check_webhook_health(engine=engine, settings=settings, now=utcnow())
    [repeat] = check_webhook_health(engine=engine, settings=settings, now=utcnow())

    assert (warning.kind, warning.count, warning.queued, repeat.queued) == (
        WebhookWarningKind.SIGNATURE_FAILURES, 7, True, False,
    )  # fmt: skip
    [message] = outbox_rows(engine)
    assert (message.channel, message.kind) == ("#alerts", "webhook_signature_failures")
    assert message.payload["text"] == SIGNATURE_HEADER
    assert "7 webhook requests were refused" in message.payload["blocks"][1]["text"]["text"]


def test_a_new_spike_after_a_quiet_hour_is_a_new_incident(sqlite_engine):
    settings = settings_for(sqlite_engine, webhook_signature_failures=3)
    now = [T0]
    counter = RejectionCounter(sqlite_engine, clock=lambda: now[0])
    for minute in (0, 1, 2):
        now[0] = T0 + timedelta(minutes=minute)
        counter.record()
    assert counter.flush() == 3 and counter.flush() == 0
    [first] = check_webhook_health(
        engine=sqlite_engine, settings=settings, now=T0 + timedelta(minutes=5)
    )
    assert first.since == T0 and first.queued
    for minute in (50, 51, 52):  # within the hour: the same incident
        now[0] = T0 + timedelta(minutes=minute)
        counter.record()
    counter.flush()
    [same] = check_webhook_health(
        engine=sqlite_engine, settings=settings, now=T0 + timedelta(minutes=55)
    )
    assert (same.since, same.count, same.queued) == (T0, 6, False)

    for minute in (200, 200, 201):  # after more than an hour without refusals
        now[0] = T0 + timedelta(minutes=minute)
        counter.record()
    counter.flush()
    [new] = check_webhook_health(
        engine=sqlite_engine, settings=settings, now=T0 + timedelta(minutes=205)
    )
    assert (new.since, new.count, new.queued) == (T0 + timedelta(minutes=200), 3, True)
    assert len(outbox_rows(sqlite_engine)) == 2


def test_counts_stay_in_memory_when_the_database_refuses_them(tmp_path):
    from storage.db import make_engine

    broken = make_engine(f"sqlite:///{tmp_path}/missing-dir/nothing.db")
    counter = RejectionCounter(broken)
    counter.record()
    counter.record()
    assert counter.flush() == 0 and counter.pending() == 2

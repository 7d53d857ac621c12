"""The `reconcile` job against the loopback Stripe stand-in: a drift report is queued for the
digest channel only when something drifted, and the same drift is reported once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.stripe_client import make_stripe_client
from handlers.jobs.reconcile import NO_KEY, run_reconcile
from handlers.slack.sync_blocks import DRIFT_HEADER
from handlers.stripe.objects import apply_object
from handlers.sync.pacing import Pacer
from storage.db import session_scope
from tests.fakes import stripe_objects as so
from tests.fakes.stripe_api import StripeStandIn
from tests.jobs.conftest import job_settings, outbox
from tests.sync.conftest import API_KEY, FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 27, 2, 0, tzinfo=UTC))


@pytest.fixture
def stand_in(clock):
    with StripeStandIn(api_key=API_KEY, clock=clock) as server:
        yield server


def run(engine, stand_in, clock, **settings):
    settings = job_settings(stripe_api_key=API_KEY, stripe_api_base=stand_in.url, **settings)
    return run_reconcile(
        engine=engine,
        settings=settings,
        now=clock.now(),
        client=make_stripe_client(settings),
        pacer=Pacer(max_per_second=25, clock=clock, sleep=clock.sleep),
    )


def test_a_missed_cancellation_is_repaired_and_reported_once(engine, stand_in, clock):
    now = int(clock.now().timestamp())
    active = so.subscription(1, customer_id="cus_1", created=so.EPOCH)
    with session_scope(engine) as session:
        apply_object(session, active, version_at=clock.now() - timedelta(days=2))
    stand_in.add(
        "subscriptions",
        {**active, "status": "canceled", "canceled_at": now - 600, "ended_at": now - 600},
    )

    result = run(engine, stand_in, clock)

    [message] = outbox(engine, "drift_report")
    assert message.channel == "#revenue"
    assert message.payload["blocks"][0]["text"]["text"] == DRIFT_HEADER
    assert result.posted == ["drift report (1 objects) to #revenue"]
    again = run(engine, stand_in, clock)
    assert again.posted == [] and "no drift: the store matches Stripe" in again.notes
    assert len(outbox(engine, "drift_report")) == 1


def test_no_drift_posts_nothing(sqlite_engine, stand_in, clock):
    result = run(sqlite_engine, stand_in, clock)
    assert outbox(sqlite_engine) == []
    assert "no drift: the store matches Stripe" in result.notes


def test_without_a_key_it_says_so_and_touches_nothing(sqlite_engine, stand_in, clock):
    settings = job_settings(stripe_api_key=None)
    result = run_reconcile(engine=sqlite_engine, settings=settings, now=clock.now())
    assert result.notes == [NO_KEY]
    assert outbox(sqlite_engine) == []

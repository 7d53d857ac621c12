"""The `reconcile` job against the loopback Stripe stand-in: a drift report is posted to the
digest channel only when something drifted, and once per day."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.stripe_client import make_stripe_client
from handlers.jobs.reconcile import DRIFT_TITLE, run_reconcile
from handlers.sync.pacing import Pacer
from storage.db import session_scope
from storage.models import SubscriptionItem
from tests.fakes import stripe_objects as so
from tests.fakes.stripe_api import StripeStandIn
from tests.jobs.conftest import job_settings, outbox
from tests.sync.conftest import API_KEY, FakeClock
from tests.sync.local_apply import LocalApply


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 3, 27, 2, 0, tzinfo=UTC))


@pytest.fixture
def stand_in(clock):
    with StripeStandIn(api_key=API_KEY, clock=clock) as server:
        yield server


def run(engine, stand_in, clock, **extra):
    settings = job_settings(stripe_api_key=API_KEY, stripe_api_base=stand_in.url)
    return run_reconcile(
        engine=engine,
        settings=settings,
        now=clock.now(),
        client=make_stripe_client(settings),
        pacer=Pacer(max_per_second=25, clock=clock, sleep=clock.sleep),
        apply_object=LocalApply(),
        **extra,
    )


def test_a_missed_cancellation_is_repaired_and_reported_once(sqlite_engine, stand_in, clock):
    now = int(clock.now().timestamp())
    active = so.subscription(1, customer_id="cus_1", created=so.EPOCH)
    with session_scope(sqlite_engine) as session:
        LocalApply()(
            session, active, version_at=clock.now() - timedelta(days=2), source_event_id="evt_seen"
        )
        session.add(
            SubscriptionItem(
                id="si_1",
                subscription_id=active["id"],
                currency="usd",
                unit_amount=2000,
                interval="month",
            )
        )
    stand_in.add(
        "subscriptions",
        {**active, "status": "canceled", "canceled_at": now - 600, "ended_at": now - 600},
    )

    result = run(sqlite_engine, stand_in, clock)

    [message] = outbox(sqlite_engine, "reconcile")
    assert message.channel == "#revenue"
    assert message.payload["blocks"][0]["text"]["text"] == DRIFT_TITLE
    assert "Repaired 1 objects" in message.payload["blocks"][1]["text"]["text"]
    assert result.posted == ["drift report for 2026-03-27 to #revenue"]
    assert run(sqlite_engine, stand_in, clock).posted == []  # the store matches now: no post
    assert len(outbox(sqlite_engine)) == 1


def test_no_drift_posts_nothing(sqlite_engine, stand_in, clock):
    result = run(sqlite_engine, stand_in, clock)
    assert outbox(sqlite_engine) == []
    assert "no drift: the store matches Stripe" in result.notes

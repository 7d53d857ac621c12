"""Fixtures for backfill and reconciliation: a simulated clock, the Stripe stand-in, a client,
and the real `apply_object` with a note of what it was given."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import stripe
from sqlmodel import Session

from bot.settings import Settings
from bot.stripe_client import make_stripe_client
from handlers.stripe.objects import apply_object
from handlers.stripe.registry import Change
from handlers.sync.pacing import Pacer
from tests.fakes.stripe_api import StripeStandIn

API_KEY = "sk_test_billbot_standin"


class FakeClock:
    """Monotonic seconds and wall time that move only when someone sleeps."""

    def __init__(self, start: datetime = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)) -> None:
        self.seconds = 1000.0
        self.start = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.seconds

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "asked to sleep for nothing"
        self.sleeps.append(seconds)
        self.seconds += seconds

    def now(self) -> datetime:
        return self.start + timedelta(seconds=self.seconds - 1000.0)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def stand_in(clock) -> Iterator[StripeStandIn]:
    with StripeStandIn(api_key=API_KEY, clock=clock) as server:
        yield server


@pytest.fixture
def settings(stand_in, sqlite_url) -> Settings:
    return Settings(stripe_api_key=API_KEY, stripe_api_base=stand_in.url, database_url=sqlite_url)


@pytest.fixture
def client(settings) -> stripe.StripeClient:
    return make_stripe_client(settings)


@pytest.fixture
def pacer(clock) -> Pacer:
    return Pacer(max_per_second=25, clock=clock, sleep=clock.sleep, max_attempts=4)


class RecordingApply:
    """The real `handlers.stripe.objects.apply_object`, noting each object it was given
    (type, id, version) so tests can check order and that nothing was applied twice."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str, datetime]] = []

    def __call__(
        self,
        session: Session,
        obj: dict[str, Any],
        *,
        version_at: datetime,
        source_event_id: str | None = None,
    ) -> list[Change]:
        self.seen.append((obj.get("object"), obj.get("id"), version_at))
        return apply_object(session, obj, version_at=version_at, source_event_id=source_event_id)


@pytest.fixture
def recorder() -> RecordingApply:
    return RecordingApply()

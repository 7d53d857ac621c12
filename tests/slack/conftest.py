"""Fixtures for the Slack tests: the loopback Slack API, a controllable clock, settings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.settings import Settings
from tests.fakes.slack_api import FakeSlackApi

SIGNING_SECRET = "test-signing-secret"
BOT_TOKEN = "xoxb-test-token"


class FakeClock:
    """Time that moves only when a test says so; `sleep` advances it."""

    def __init__(self, start: datetime) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime(2026, 11, 27, 15, 0, tzinfo=UTC))  # a Friday afternoon


@pytest.fixture
def slack_api() -> Iterator[FakeSlackApi]:
    with FakeSlackApi(token=BOT_TOKEN) as api:
        yield api


def make_settings(api: FakeSlackApi | None = None, **overrides: object) -> Settings:
    """Settings for a test, ignoring the environment and any `.env` file."""
    values: dict[str, object] = {
        "slack_alert_channel": "#billing-alerts",
        "slack_signing_secret": SIGNING_SECRET,
    }
    if api is not None:
        values.update(slack_bot_token=BOT_TOKEN, slack_api_url=api.base_url)
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(slack_api) -> Settings:
    return make_settings(slack_api)

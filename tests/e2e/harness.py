"""The whole of billbot, run as a user runs it, with loopback stand-ins at its edges.

`running_billbot(engine)` builds the real app with `create_app(settings, engine=...)` and
runs its lifespan (inbox writer, the real outbox sender thread with the real WebClient,
the Bolt app on `POST /slack/events`) behind Starlette's TestClient, with a loopback Slack
Web API (`tests/fakes/slack_api.py`) that `SLACK_API_URL` points at. Stripe events are
posted signed, exactly as Stripe signs them; the real worker (`Worker.drain()` with the
standard reactions, as `billbot worker` runs them) applies them, so each test decides when
events are applied. Nothing of billbot is replaced or patched.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import Engine, func, select
from starlette.testclient import TestClient

from bot.app import create_app
from bot.services import standard_reactions
from bot.settings import Settings
from bot.worker import Worker
from storage.db import read_scope
from storage.models import Alert, OutboxMessage, OutboxStatus
from storage.models.inbox import StripeEvent as InboxEvent
from storage.types import utcnow
from tests.fakes.slack_api import FakeSlackApi
from tests.slack.signing import form_body, slack_headers
from tests.stripe_signing import signed_request

WEBHOOK_SECRET = "whsec_e2e_endpoint_secret"
SIGNING_SECRET = "e2e-slack-signing-secret"
BOT_TOKEN = "xoxb-e2e-bot-token"
CHANNELS = {
    "slack_alert_channel": "#billing",
    "slack_channel_payment_failed": "#collections",
    "slack_channel_cancellation": "#churn",
    "slack_channel_trial": "#trials",
}


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def e2e_settings(
    database_url: str, slack: FakeSlackApi | None = None, **overrides: Any
) -> Settings:
    """Settings as an operator would set them: a webhook secret, Slack, one channel per route."""
    values: dict[str, Any] = {
        "database_url": database_url,
        "stripe_webhook_secret": WEBHOOK_SECRET,
        "worker_embedded": False,  # the test applies events with the real worker, when it says
        "slack_channel_interval_seconds": 0,
        **CHANNELS,
    }
    if slack is not None:
        values.update(
            slack_bot_token=BOT_TOKEN,
            slack_signing_secret=SIGNING_SECRET,
            slack_api_url=slack.base_url,
        )
    values.update(overrides)
    return Settings(_env_file=None, **values)


def wait_until(condition: Callable[[], Any], *, what: str, timeout: float = 30.0) -> Any:
    """Poll until `condition()` is truthy; a generous bound only stops a broken test hanging."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Billbot:
    engine: Engine
    settings: Settings
    slack: FakeSlackApi
    http: TestClient
    clock: Callable[[], datetime] = utcnow

    # -- Stripe side ------------------------------------------------------------------

    def deliver(self, event: dict[str, Any], *, secret: str = WEBHOOK_SECRET) -> httpx.Response:
        body, headers = signed_request(event, secret)
        return self.http.post("/stripe/webhook", content=body, headers=headers)

    def deliver_all(self, events: list[dict[str, Any]]) -> list[httpx.Response]:
        responses = [self.deliver(event) for event in events]
        assert [r.status_code for r in responses] == [200] * len(responses), [
            r.text for r in responses
        ]
        return responses

    def apply(self) -> None:
        """What `billbot worker` does: apply every due event with the standard reactions."""
        Worker.from_settings(
            self.settings,
            engine=self.engine,
            reactions=standard_reactions(self.settings),
            clock=self.clock,
        ).drain()

    def settle(self) -> None:
        """Apply what arrived, then let the app's own sender deliver everything due."""
        self.apply()
        wait_until(lambda: pending_outbox(self.engine) == 0, what="the outbox to drain")

    def happen(self, events: list[dict[str, Any]]) -> None:
        self.deliver_all(events)
        self.settle()

    # -- Slack side -------------------------------------------------------------------

    def slack_request(
        self, payload: dict[str, Any], *, secret: str = SIGNING_SECRET
    ) -> httpx.Response:
        body = form_body(payload)
        return self.http.post(
            "/slack/events", content=body, headers=slack_headers(body, secret=secret)
        )


@contextmanager
def running_billbot(
    engine: Engine,
    *,
    slack: FakeSlackApi | None = None,
    clock: Callable[[], datetime] = utcnow,
    **overrides: Any,
) -> Iterator[Billbot]:
    """The app with its lifespan running; a Slack stand-in of its own unless one is given
    (to keep one across an app restart)."""
    with contextlib.ExitStack() as stack:
        if slack is None:
            slack = stack.enter_context(FakeSlackApi(token=BOT_TOKEN))
        settings = e2e_settings(url_of(engine), slack, **overrides)
        http = stack.enter_context(TestClient(create_app(settings, engine=engine, clock=clock)))
        yield Billbot(engine=engine, settings=settings, slack=slack, http=http, clock=clock)


# -- reading the store ----------------------------------------------------------------------


def pending_outbox(engine: Engine) -> int:
    with read_scope(engine) as session:
        return session.execute(
            select(func.count()).where(OutboxMessage.status == OutboxStatus.PENDING)
        ).scalar_one()


def outbox_statuses(engine: Engine) -> dict[str, int]:
    with read_scope(engine) as session:
        rows = session.execute(
            select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        )
        return {status: count for status, count in rows}


def stored_alerts(engine: Engine) -> list[Alert]:
    with read_scope(engine) as session:
        alerts = list(session.execute(select(Alert).order_by(Alert.id)).scalars())
        session.expunge_all()
        return alerts


def inbox_statuses(engine: Engine) -> dict[str, int]:
    with read_scope(engine) as session:
        rows = session.execute(select(InboxEvent.status, func.count()).group_by(InboxEvent.status))
        return {status: count for status, count in rows}


# -- reading what Slack received -------------------------------------------------------------


@dataclass(frozen=True)
class SlackCall:
    """One successful chat call, reduced to what a reader of the channel would see."""

    method: str  # "post", "reply" or "update"
    channel: str
    ts: str  # the message posted, the thread replied to, or the message updated
    text: str
    blocks: str  # JSON text of the blocks, for substring checks


def chat_calls(slack: FakeSlackApi) -> list[SlackCall]:
    calls = []
    for call in slack.calls:
        if call.status != 200 or not call.response.get("ok"):
            continue
        params = call.params
        blocks = json.dumps(call.json_param("blocks") or [])
        if call.method == "chat.postMessage" and params.get("thread_ts"):
            calls.append(
                SlackCall(
                    "reply", call.response["channel"], params["thread_ts"], params["text"], blocks
                )
            )
        elif call.method == "chat.postMessage":
            calls.append(
                SlackCall(
                    "post", call.response["channel"], call.response["ts"], params["text"], blocks
                )
            )
        elif call.method == "chat.update":
            calls.append(
                SlackCall("update", params["channel"], params["ts"], params["text"], blocks)
            )
    return calls

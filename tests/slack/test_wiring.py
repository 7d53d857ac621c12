"""The Bolt app factory, its route, console mode, and the sender thread entry."""

from __future__ import annotations

import threading
import time

import pytest
from slack_sdk import WebClient
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.sender import run_sender
from bot.slack_app import (
    SlackNotConfigured,
    create_bolt_app,
    make_web_client,
    slack_route,
    slack_routes,
    start_socket_mode,
)
from handlers.alerts import AlertReaction
from handlers.slack import copy
from handlers.slack.ids import ActionId
from handlers.slack.refs import AlertRef
from storage.alerts import record_alert_message
from storage.db import session_scope
from storage.models import OutboxStatus
from tests.slack.conftest import BOT_TOKEN, make_settings
from tests.slack.factories import (
    alerts,
    applied,
    event,
    failed_payment,
    invoice_object,
    outbox_rows,
)
from tests.slack.signing import block_actions, form_body, slack_headers


def test_web_client_honours_slack_api_url(slack_api):
    client = make_web_client(make_settings(slack_api, slack_api_url=slack_api.base_url.rstrip("/")))
    assert client.base_url == slack_api.base_url
    assert client.auth_test()["team_id"] == "T0BILLBOT"
    assert make_web_client(make_settings(slack_api), retries=False).retry_handlers == []


def test_console_mode_has_no_slack_route_and_no_bolt_app(engine):
    settings = make_settings()
    assert slack_routes(settings, engine=engine) == []
    with pytest.raises(SlackNotConfigured, match="SLACK_BOT_TOKEN"):
        create_bolt_app(settings, engine=engine)


def test_a_bot_token_without_signing_secret_is_refused(engine, slack_api):
    with pytest.raises(SlackNotConfigured, match="SLACK_SIGNING_SECRET"):
        create_bolt_app(make_settings(slack_api, slack_signing_secret=None), engine=engine)


def test_socket_mode_only_with_an_app_token(engine, settings):
    bolt = create_bolt_app(
        settings, engine=engine, client=WebClient(token=BOT_TOKEN, base_url=settings.slack_api_url)
    )
    assert start_socket_mode(bolt, settings) is None


def test_alert_reaction_is_a_reaction(engine, settings):
    failed_payment(engine, settings, 1)  # writes the invoice and runs the reaction once
    with session_scope(engine) as session:
        AlertReaction(settings)(
            session, applied(event("invoice.payment_failed", invoice_object(1)))
        )
    assert len(alerts(engine)) == 1 and len(outbox_rows(engine)) == 1


def test_run_sender_thread_delivers_and_stops(engine, settings, slack_api):
    failed_payment(engine, settings, 1)
    stop = threading.Event()
    thread = threading.Thread(
        target=run_sender, kwargs={"settings": settings, "engine": engine, "stop": stop}
    )
    thread.start()
    try:
        deadline = time.monotonic() + 10  # a bound on waiting, not an assertion about speed
        while outbox_rows(engine)[0].status != OutboxStatus.SENT and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert outbox_rows(engine)[0].status == OutboxStatus.SENT
    assert len(slack_api.calls_to("chat.postMessage")) == 1


def test_unexpected_errors_are_answered_with_a_reference(engine, settings, slack_api, clock):
    failed_payment(engine, settings, 1)
    with session_scope(engine) as session:  # as if the sender had posted it
        record_alert_message(
            session=session,
            alert_ids=[alerts(engine)[0].id],
            channel="C0ALERTS",
            ts="1700000000.000001",
            collapsed=False,
            now=clock(),
        )
    [alert] = alerts(engine)
    slack_api.fail("views.open", error="expired_trigger_id")
    bolt = create_bolt_app(settings, engine=engine, clock=clock, process_before_response=True)
    body = form_body(
        block_actions(
            action_id=ActionId.CREATE_TASK,
            value=AlertRef(alert=alert.id).encode(),
            user="U1",
            channel=alert.message_channel,
            message_ts=alert.message_ts,
        )
    )
    with TestClient(Starlette(routes=[slack_route(bolt)])) as http:
        http.post("/slack/events", content=body, headers=slack_headers(body))
    [apology] = slack_api.calls_to("chat.postEphemeral")
    assert apology.params["text"].startswith(copy.SOMETHING_WENT_WRONG.split("{ref}")[0])
    assert apology.params["user"] == "U1"

"""The outbox sender against the loopback Slack API, with the real WebClient and a fake clock."""

from __future__ import annotations

import logging
import socket
from datetime import timedelta

import pytest
from slack_sdk import WebClient
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from bot.sender import Sender, SenderConfig
from bot.storm import is_storm
from handlers.slack import copy
from storage import outbox
from storage.db import make_engine, read_scope, session_scope
from storage.models import OutboxStatus
from tests.e2e.tcp_proxy import TcpProxy
from tests.slack.conftest import BOT_TOKEN, make_settings
from tests.slack.factories import T0, alerts, failed_payment, outbox_rows

CONFIG = SenderConfig(
    channel_interval=1.0,
    storm_threshold=5,
    storm_window=60,
    max_attempts=4,
    lease=60,
    backoff_base=2,
    backoff_cap=60,
    poll=0.5,
)


def client_for(api) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=api.base_url, retry_handlers=[])


def dead_client() -> WebClient:
    with socket.socket() as probe:  # a port nobody listens on: connection refused
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return WebClient(
        token=BOT_TOKEN, base_url=f"http://127.0.0.1:{port}/api/", retry_handlers=[], timeout=2
    )


def pending(engine) -> int:
    with read_scope(engine) as session:
        return outbox.count_by_status(session=session).get(OutboxStatus.PENDING, 0)


def drain(sender: Sender, clock, engine, *, max_steps: int = 300) -> None:
    for _ in range(max_steps):
        wait = sender.step()
        if pending(engine) == 0:
            return
        clock.advance(max(wait, 0.05))
    raise AssertionError("the outbox did not drain")


@pytest.fixture
def settings():
    return make_settings(slack_alert_channel="#billing-alerts")


def sender_for(engine, api, clock, **config) -> Sender:
    return Sender(
        engine=engine,
        client=client_for(api) if api else None,
        config=SenderConfig(**{**CONFIG.__dict__, **config}) if config else CONFIG,
        clock=clock,
    )


def test_post_then_update_and_thread_reply_once_each(engine, settings, slack_api, clock):
    failed_payment(engine, settings, 1, attempt=1)
    failed_payment(engine, settings, 1, attempt=2)
    drain(sender_for(engine, slack_api, clock), clock, engine)
    [post, reply] = slack_api.calls_to("chat.postMessage")
    [update] = slack_api.calls_to("chat.update")
    [alert] = alerts(engine)
    assert post.params["channel"] == "#billing-alerts" and "Customer 1" in post.params["text"]
    assert alert.message_ts and alert.message_channel == slack_api.channel_id("#billing-alerts")
    assert (update.params["channel"], update.params["ts"]) == (
        alert.message_channel,
        alert.message_ts,
    )
    assert (reply.params["channel"], reply.params["thread_ts"]) == (
        alert.message_channel,
        alert.message_ts,
    )
    assert "Attempt 2 failed too" in reply.params["text"]
    assert {row.status for row in outbox_rows(engine)} == {OutboxStatus.SENT}


def test_one_message_per_second_per_channel(engine, settings, slack_api, clock):
    for n in range(3):
        failed_payment(engine, settings, n)
    sender = sender_for(engine, slack_api, clock)
    sender.step()
    sender.step()  # no time has passed: the channel is still paced
    assert len(slack_api.calls_to("chat.postMessage")) == 1
    clock.advance(0.5)
    sender.step()
    assert len(slack_api.calls_to("chat.postMessage")) == 1
    clock.advance(0.5)
    sender.step()
    assert len(slack_api.calls_to("chat.postMessage")) == 2


def test_429_retry_after_is_honoured(engine, settings, slack_api, clock):
    failed_payment(engine, settings, 1)
    slack_api.fail("chat.postMessage", status=429, error="ratelimited", retry_after=30)
    sender = sender_for(engine, slack_api, clock)
    assert sender.step() > 0
    clock.advance(29)
    sender.step()
    assert [c.status for c in slack_api.calls_to("chat.postMessage")] == [429]
    clock.advance(1)
    sender.step()
    assert [c.status for c in slack_api.calls_to("chat.postMessage")] == [429, 200]
    [row] = outbox_rows(engine)
    assert (
        row.status == OutboxStatus.SENT and row.attempts == 0
    )  # a rate limit is not a failed attempt


def test_5xx_is_retried_with_backoff_and_posted_once(engine, settings, slack_api, clock):
    failed_payment(engine, settings, 1, attempt=1)
    failed_payment(engine, settings, 1, attempt=2)  # an update and a reply wait for the post
    slack_api.fail("chat.postMessage", status=500, raw_body="<html>Internal Server Error</html>")
    slack_api.fail("chat.postMessage", status=503, error="service_unavailable")
    sender = sender_for(engine, slack_api, clock)
    sender.step()
    clock.advance(1.9)
    sender.step()
    assert len(slack_api.calls_to("chat.postMessage")) == 1  # backoff: 2 s after the first failure
    drain(sender, clock, engine)
    assert [c.status for c in slack_api.calls_to("chat.postMessage")] == [500, 503, 200, 200]
    channel = slack_api.channel_id("#billing-alerts")
    top_level = [m for m in slack_api.messages[channel].values() if "thread_ts" not in m]
    assert len(top_level) == 1
    assert outbox_rows(engine)[0].attempts == 2


def test_permanent_error_fails_the_row_and_its_followers(engine, settings, slack_api, clock):
    failed_payment(engine, settings, 1, attempt=1)
    failed_payment(engine, settings, 1, attempt=2)
    slack_api.missing_channels.add("#billing-alerts")
    drain(sender_for(engine, slack_api, clock), clock, engine)
    rows = outbox_rows(engine)
    assert [(r.operation, r.status) for r in rows] == [
        ("post", "failed"),
        ("update", "failed"),
        ("reply", "failed"),
    ]
    assert rows[0].last_error == "channel_not_found"
    assert len(slack_api.calls_to("chat.postMessage")) == 1


def test_restart_delivers_what_was_left_exactly_once(engine, settings, slack_api, clock):
    for n in range(3):
        failed_payment(engine, settings, n)
    first = Sender(engine=engine, client=dead_client(), config=CONFIG, clock=clock)
    first.step()  # network error: retried later, nothing lost
    with session_scope(engine) as session:  # and a sender that died in the middle of a call
        assert outbox.claim(
            session=session,
            message_id=outbox_rows(engine)[1].id,
            now=clock(),
            lease=timedelta(seconds=60),
        )
    assert pending(engine) == 3
    second = sender_for(engine, slack_api, clock)  # a new process
    drain(second, clock, engine)
    texts = sorted(c.params["text"] for c in slack_api.calls_to("chat.postMessage"))
    assert texts == sorted(f"Payment failed: Customer {n} · $49.00 · attempt 1" for n in range(3))
    assert outbox_rows(engine)[0].last_error is None


def test_gives_up_after_max_attempts(engine, settings, slack_api, clock):
    failed_payment(engine, settings, 1)
    slack_api.fail("chat.postMessage", status=500, times=CONFIG.max_attempts)
    drain(sender_for(engine, slack_api, clock), clock, engine)
    [row] = outbox_rows(engine)
    assert row.status == OutboxStatus.FAILED and "gave up after 4 attempts" in row.last_error
    with session_scope(engine) as session:
        assert outbox.requeue_failed(session=session, now=clock()) == 1
    drain(sender_for(engine, slack_api, clock), clock, engine)
    assert outbox_rows(engine)[0].status == OutboxStatus.SENT


def test_storm_is_collapsed_into_one_summary(engine, settings, slack_api, clock):
    for n in range(8):
        failed_payment(engine, settings, n, created=T0 + timedelta(seconds=5 * n))
    sender = sender_for(engine, slack_api, clock)
    drain(sender, clock, engine)
    [summary] = slack_api.calls_to("chat.postMessage")
    assert summary.params["text"] == copy.STORM_TITLE.format(
        n=8, what=copy.TITLES["payment_failed"]
    )
    assert all(f"*Customer {n}*" in str(summary.params["blocks"]) for n in range(8))
    stored = alerts(engine)
    assert {(a.collapsed, a.message_ts) for a in stored} == {(True, summary.response["ts"])}
    assert {r.status for r in outbox_rows(engine) if r.alert_id} == {OutboxStatus.COLLAPSED}
    # A later development of one of them replies in the summary's thread and leaves the summary alone.
    failed_payment(engine, settings, 3, attempt=2)
    drain(sender, clock, engine)
    reply = slack_api.calls_to("chat.postMessage")[-1]
    assert reply.params["thread_ts"] == stored[3].message_ts
    assert slack_api.calls_to("chat.update") == []
    assert [r.status for r in outbox_rows(engine) if r.operation == "update"] == [
        OutboxStatus.SUPERSEDED
    ]


def test_a_few_alerts_are_not_a_storm(engine, settings, slack_api, clock):
    for n in range(5):
        failed_payment(engine, settings, n)
    drain(sender_for(engine, slack_api, clock), clock, engine)
    assert len(slack_api.calls_to("chat.postMessage")) == 5
    assert not any(a.collapsed for a in alerts(engine))


def test_storm_window():
    times = [T0 + timedelta(seconds=30 * n) for n in range(6)]
    assert not is_storm(times, 5, 60)  # six alerts, but never more than three in a minute
    assert is_storm(times, 5, 150)
    assert not is_storm(times[:5], 5, 3600)


def test_console_mode_prints_each_message_and_marks_it_sent(engine, clock, caplog):
    settings = make_settings(
        slack_alert_channel=None
    )  # no token, no channel: the console placeholder
    failed_payment(engine, settings, 1, attempt=1)
    failed_payment(engine, settings, 1, attempt=2)
    caplog.set_level(logging.INFO, logger="billbot.console")
    drain(Sender(engine=engine, client=None, config=CONFIG, clock=clock), clock, engine)
    printed = [r.getMessage() for r in caplog.records if r.name == "billbot.console"]
    assert len(printed) == 3
    assert printed[0].startswith("── post → #billbot-console ──")
    assert "Customer 1" in printed[0] and "Decline reason: Card declined" in printed[0]
    assert (
        printed[2].startswith("── reply → #billbot-console ──")
        and "Attempt 2 failed too" in printed[2]
    )
    assert {r.status for r in outbox_rows(engine)} == {OutboxStatus.SENT}


def test_a_database_lost_after_slack_accepted_the_post_records_it_later_and_never_reposts(
    postgres_url, settings, slack_api, clock
):
    proxy = TcpProxy(*_host_port(postgres_url))
    proxy.up()
    engine = make_engine(make_url(postgres_url).set(port=proxy.port).render_as_string(False))
    try:
        failed_payment(engine, settings, 1, attempt=1)
        sender = sender_for(engine, slack_api, clock)
        slack_api.on_answer = lambda method: proxy.down()  # the database goes as Slack answers
        with pytest.raises(SQLAlchemyError):
            sender.step()
        slack_api.on_answer = None
        proxy.up()
        clock.advance(CONFIG.lease + 1)  # the row's claim has lapsed: it would be due again
        drain(sender, clock, engine)
        assert len(slack_api.calls_to("chat.postMessage")) == 1
        (row,) = outbox_rows(engine)
        assert row.status == OutboxStatus.SENT
        assert row.sent_ts == slack_api.calls_to("chat.postMessage")[0].response["ts"]
    finally:
        proxy.down()
        engine.dispose()


def _host_port(url: str) -> tuple[str, int]:
    parsed = make_url(url)
    return parsed.host or "127.0.0.1", parsed.port or 5432

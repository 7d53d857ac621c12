"""`billbot outbox` and `billbot outbox retry`, on rows the real sender failed against the
loopback Slack API, then delivered once re-queued."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient

from bot.cli import main
from bot.sender import Sender, SenderConfig
from storage import outbox
from storage.db import read_scope
from storage.models import OutboxStatus
from storage.types import utcnow
from tests.slack.conftest import BOT_TOKEN, FakeClock
from tests.slack.factories import failed_payment, outbox_rows

CONFIG = SenderConfig(channel_interval=1.0, max_attempts=3, backoff_base=1, poll=0.5)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(utcnow())  # `retry` makes rows due at the wall clock's now


@pytest.fixture
def cli(monkeypatch, tmp_path, engine, capsys):
    """Run `billbot outbox ARGS` in-process against `engine`; returns (exit status, stdout)."""
    monkeypatch.chdir(tmp_path)  # no `.env`
    monkeypatch.setenv("DATABASE_URL", engine.url.render_as_string(hide_password=False))

    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        status = main(["outbox", *args])
        return status, capsys.readouterr().out

    return run


def drain(engine, slack_api, clock) -> None:
    """Let the sender work until nothing is pending (it settles what Slack refuses)."""
    client = WebClient(token=BOT_TOKEN, base_url=slack_api.base_url, retry_handlers=[])
    sender = Sender(engine=engine, client=client, config=CONFIG, clock=clock)
    for _ in range(200):
        wait = sender.step()
        with read_scope(engine) as session:
            if not outbox.count_by_status(session=session).get(OutboxStatus.PENDING):
                return
        clock.advance(max(wait, 0.05))
    raise AssertionError("the outbox did not drain")


def statuses(engine) -> list[tuple[str, str]]:
    return [(row.operation, row.status) for row in outbox_rows(engine)]


def test_lists_messages_newest_first_with_counts(cli, engine, settings, slack_api, clock):
    failed_payment(engine, settings, 1)
    slack_api.fail("chat.postMessage", error="channel_not_found")  # permanent: fails at once
    drain(engine, slack_api, clock)
    failed_payment(engine, settings, 2)
    drain(engine, slack_api, clock)
    failed, sent = outbox_rows(engine)
    assert (failed.status, sent.status) == (OutboxStatus.FAILED, OutboxStatus.SENT)

    status, out = cli()
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "outbox: failed 1, sent 1"
    assert lines[1].startswith(f"{sent.id}  payment_failed  post  #billing-alerts  sent")
    assert lines[2].startswith(f"{failed.id}  payment_failed  post  #billing-alerts  failed")
    assert "attempts=0" in lines[2] and f"created={failed.created_at:%Y-%m-%dT%H:%M:%SZ}" in out
    assert lines[3] == "    error: channel_not_found"

    status, out = cli("--failed")
    assert status == 0 and f"\n{failed.id}  " in out and f"\n{sent.id}  " not in out
    status, out = cli("--limit", "1")
    assert f"\n{sent.id}  " in out and f"\n{failed.id}  " not in out


def test_failed_lists_rows_waiting_to_retry_too(cli, engine, settings, slack_api, clock):
    failed_payment(engine, settings, 1)
    slack_api.fail("chat.postMessage", status=503, error="service_unavailable")
    client = WebClient(token=BOT_TOKEN, base_url=slack_api.base_url, retry_handlers=[])
    Sender(engine=engine, client=client, config=CONFIG, clock=clock).step()
    [row] = outbox_rows(engine)

    status, out = cli("--failed")
    assert status == 0 and "outbox: pending 1" in out
    assert f"{row.id}  payment_failed  post  #billing-alerts  pending  attempts=1" in out
    assert "next_attempt=" in out and "error: 503 service_unavailable" in out
    assert "error: 503 service_unavailable" in cli()[1]  # the full listing shows it too


def test_empty_outbox(cli):
    assert cli() == (0, "outbox: empty\nno messages\n")
    assert cli("--failed") == (0, "outbox: empty\nno failed messages\n")
    assert cli("retry", "--all-failed") == (0, "no failed outbox messages; nothing to retry\n")


def test_retry_one_requeues_it_and_the_sender_delivers_it(cli, engine, settings, slack_api, clock):
    failed_payment(engine, settings, 1, attempt=1)
    failed_payment(engine, settings, 1, attempt=2)  # an update and a reply wait for the post
    slack_api.missing_channels.add("#billing-alerts")
    drain(engine, slack_api, clock)
    post, update, reply = outbox_rows(engine)
    assert statuses(engine) == [("post", "failed"), ("update", "failed"), ("reply", "failed")]
    slack_api.missing_channels.clear()  # someone invited the bot to the channel

    status, out = cli("retry", str(update.id))
    assert status == 0 and f"outbox message {update.id} re-queued" in out
    assert f"`billbot outbox retry {post.id}`" in out  # it cannot go before its alert's post
    status, out = cli("retry", str(post.id))
    assert status == 0 and f"outbox message {post.id} re-queued" in out
    assert "billbot outbox retry" not in out
    requeued = outbox_rows(engine)[0]
    assert (requeued.status, requeued.attempts) == (OutboxStatus.PENDING, 0)

    drain(engine, slack_api, clock)
    assert statuses(engine) == [("post", "sent"), ("update", "sent"), ("reply", "failed")]
    [message] = slack_api.messages[slack_api.channel_id("#billing-alerts")].values()
    assert message["text"].endswith("attempt 2")  # posted once, then updated to attempt 2

    assert cli("retry", str(post.id)) == (
        1,
        f"outbox message {post.id} is sent, not failed; nothing to retry\n",
    )
    assert cli("retry", "999999") == (
        1,
        "billbot: no outbox message 999999 (see `billbot outbox`)\n",
    )
    assert statuses(engine)[0] == ("post", "sent")


def test_retry_all_failed_skips_updates_a_newer_one_overtook(
    cli, engine, settings, slack_api, clock
):
    failed_payment(engine, settings, 1, attempt=1)
    drain(engine, slack_api, clock)
    slack_api.fail("chat.update", error="invalid_blocks")
    failed_payment(engine, settings, 1, attempt=2)
    drain(engine, slack_api, clock)  # that update fails; its reply is posted
    failed_payment(engine, settings, 1, attempt=3)
    drain(engine, slack_api, clock)  # the newer update gets through
    slack_api.fail("chat.postMessage", error="not_in_channel")
    failed_payment(engine, settings, 2)
    drain(engine, slack_api, clock)
    assert statuses(engine) == [
        ("post", "sent"),
        ("update", "failed"),
        ("reply", "sent"),
        ("update", "sent"),
        ("reply", "sent"),
        ("post", "failed"),
    ]
    updates_before = len(slack_api.calls_to("chat.update"))

    status, out = cli("retry", "--all-failed")
    assert status == 0
    assert out.splitlines() == [
        "re-queued 1 failed outbox message(s); the sender delivers them next",
        "  1 older alert update(s) overtaken by newer ones were marked superseded instead",
    ]
    assert statuses(engine)[1] == ("update", "superseded")
    drain(engine, slack_api, clock)
    assert statuses(engine)[-1] == ("post", "sent")
    # the old rendering was not sent over the newer one
    assert len(slack_api.calls_to("chat.update")) == updates_before


def test_retry_of_an_overtaken_update_supersedes_it(cli, engine, settings, slack_api, clock):
    failed_payment(engine, settings, 1, attempt=1)
    drain(engine, slack_api, clock)
    slack_api.fail("chat.update", error="invalid_blocks")
    failed_payment(engine, settings, 1, attempt=2)
    drain(engine, slack_api, clock)
    failed_payment(engine, settings, 1, attempt=3)
    old_update = outbox_rows(engine)[1]

    status, out = cli("retry", str(old_update.id))
    assert status == 0 and "overtaken by a newer one; marked superseded" in out
    assert statuses(engine)[1] == ("update", "superseded")


@pytest.mark.parametrize(
    "args, complaint",
    [
        (["retry"], "one of the arguments ID --all-failed is required"),
        (["retry", "7", "--all-failed"], "not allowed with argument"),
        (["retry", "in_123"], "'in_123' is not an outbox message id"),
        (["--limit", "0"], "must be at least 1"),
    ],
)
def test_bad_arguments_are_explained(cli, capsys, args, complaint):
    with pytest.raises(SystemExit) as exit_info:
        cli(*args)
    assert exit_info.value.code == 2
    assert complaint in capsys.readouterr().err

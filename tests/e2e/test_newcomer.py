"""`billbot serve` as its own process, as a newcomer runs it (`make run`) and as it is deployed:
in an empty directory with nothing configured (console mode, webhooks off); with only a webhook
secret, where a signed failed-payment event ends up as a readable alert in the log; and with
Slack configured, where the alert is posted and its button answered over real HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from handlers.slack.ids import ActionId
from tests.e2e.harness import BOT_TOKEN, SIGNING_SECRET, WEBHOOK_SECRET, wait_until
from tests.factories import NEW, customer, event, invoice
from tests.fakes.slack_api import FakeSlackApi
from tests.slack.signing import block_actions, form_body, slack_headers
from tests.stripe_signing import signed_request

BILLBOT = Path(sys.executable).with_name("billbot")


class Served:
    def __init__(self, process: subprocess.Popen, port: int) -> None:
        self.process, self.url, self.lines = process, f"http://127.0.0.1:{port}", []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stderr:
            self.lines.append(line)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def stop(self) -> int:
        self.process.send_signal(signal.SIGINT)
        code = self.process.wait(timeout=30)
        self._reader.join(timeout=5)
        return code


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def billbot_serve(directory: Path, **env: str) -> Iterator[Served]:
    """`billbot serve` with a clean environment: only PATH and HOME, plus `env`."""
    port = free_port()
    environment = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    environment.update(PORT=str(port), WORKER_POLL_SECONDS="0.1", **env)
    process = subprocess.Popen(
        [str(BILLBOT), "serve"], cwd=directory, env=environment,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    served = Served(process, port)
    try:
        wait_until(lambda: _healthy(served), what="billbot serve to answer /healthz", timeout=60)
        yield served
    finally:
        if process.poll() is None:
            served.stop()


def _healthy(served: Served) -> bool:
    if served.process.poll() is not None:
        raise AssertionError(f"billbot serve exited:\n{served.log}")
    try:
        return httpx.get(f"{served.url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def test_serve_with_nothing_configured_runs_in_console_mode(tmp_path):
    with billbot_serve(tmp_path) as served:
        health = httpx.get(f"{served.url}/healthz", timeout=5)
        webhook = httpx.post(f"{served.url}/stripe/webhook", content=b"{}", timeout=5)
        code = served.stop()
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert webhook.status_code == 503 and "STRIPE_WEBHOOK_SECRET" in webhook.json()["error"]
    assert code == 0
    assert served.log.count("slack.console_mode") == 1
    assert "Traceback" not in served.log
    assert (tmp_path / "billbot.db").exists()


def test_a_signed_failed_payment_is_printed_as_an_alert_in_console_mode(tmp_path):
    grace = customer(api_version=NEW, name="Grace Hopper", email="grace@navy.example")
    failed = invoice(
        api_version=NEW, customer=grace["id"], amount_due=2000, attempt_count=1,
        next_payment_attempt=1_790_000_000, number="GRACE-0001",
    )  # fmt: skip
    events = [
        event("customer.created", grace, created=1_789_000_000, api_version=NEW),
        event("invoice.payment_failed", failed, created=1_789_000_100, api_version=NEW),
    ]
    with billbot_serve(tmp_path, STRIPE_WEBHOOK_SECRET=WEBHOOK_SECRET) as served:
        for payload in events:
            body, headers = signed_request(payload, WEBHOOK_SECRET)
            response = httpx.post(
                f"{served.url}/stripe/webhook", content=body, headers=headers, timeout=5
            )
            assert response.status_code == 200, response.text
        wait_until(
            lambda: "Payment failed: Grace Hopper" in served.log, what="the alert in the log"
        )
        code = served.stop()
    assert code == 0, served.log
    log = served.log
    assert log.count("slack.console_mode") == 1 and "Traceback" not in log
    alert = log[log.index("── post → #billbot-console ──") :]
    expected = [
        "Payment failed: Grace Hopper · $20.00 · attempt 1",
        "Customer: Grace Hopper · grace@navy.example",
        f"Amount: $20.00 · GRACE-0001 ({failed['hosted_invoice_url']})",  # a link, as people read it
        "Attempt: 1",
        "Next retry: 2026-09-21 14:13 UTC",  # a Slack date token, as its UTC fallback
        "[Open in Stripe]",
    ]
    for line in expected:
        assert line in alert, f"{line!r} not in:\n{alert}"
    assert "<!date^" not in alert and "<http" not in alert
    # log lines are events with their ids, so an operator can follow one alert through
    assert f"alerts.opened event_id={events[1]['id']}" in log and "alert_id=1" in log
    assert "slack.outbox.sent outbox_id=1 operation=post alert_id=1" in log
    assert WEBHOOK_SECRET not in log


def test_serve_with_slack_configured_posts_alerts_and_answers_buttons_over_http(tmp_path):
    """The deployed shape: `billbot serve` as its own process, Slack's Web API at SLACK_API_URL,
    a webhook's alert posted there, and its button pressed over real HTTP on /slack/events."""
    grace = customer(api_version=NEW, name="Grace Hopper", email="grace@navy.example")
    failed = invoice(api_version=NEW, customer=grace["id"], amount_due=2000, attempt_count=1)
    events = [
        event("customer.created", grace, created=1_789_000_000, api_version=NEW),
        event("invoice.payment_failed", failed, created=1_789_000_100, api_version=NEW),
    ]
    with FakeSlackApi(token=BOT_TOKEN) as slack:
        settings = {
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SIGNING_SECRET,
            "SLACK_API_URL": slack.base_url,
            "SLACK_ALERT_CHANNEL": "#billing",
        }
        with billbot_serve(tmp_path, **settings) as served:
            for payload in events:
                body, headers = signed_request(payload, WEBHOOK_SECRET)
                response = httpx.post(f"{served.url}/stripe/webhook", content=body, headers=headers)
                assert response.status_code == 200, response.text
            [post] = wait_until(lambda: slack.calls_to("chat.postMessage"), what="the alert")
            value = next(
                element["value"]
                for block in post.json_param("blocks")
                for element in block.get("elements", [])
                if element.get("action_id") == ActionId.CREATE_TASK
            )
            click = block_actions(
                action_id=ActionId.CREATE_TASK, value=value, user="U0ALICE",
                channel=post.response["channel"], message_ts=post.response["ts"],
            )  # fmt: skip
            body = form_body(click)
            answer = httpx.post(
                f"{served.url}/slack/events", content=body,
                headers=slack_headers(body, secret=SIGNING_SECRET),
            )  # fmt: skip
            assert answer.status_code == 200
            [opened] = wait_until(lambda: slack.calls_to("views.open"), what="the task modal")
            code = served.stop()
    assert code == 0, served.log
    assert post.response["channel"] == slack.channel_id("#billing")
    assert post.params["text"].startswith("Payment failed: Grace Hopper · $20.00")
    assert "Grace Hopper" in json.dumps(opened.json_param("view"))
    assert "Traceback" not in served.log and "slack.console_mode" not in served.log
    assert BOT_TOKEN not in served.log and SIGNING_SECRET not in served.log

"""POST /stripe/webhook and GET /healthz, end to end through the ASGI app, on SQLite and
PostgreSQL: signed exactly as Stripe signs, rows read back from the real database."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import httpx
import pytest
import time_machine
import uvicorn
from stripe import SignatureVerificationError

from bot.app import create_app
from bot.webhook import verify_signature
from bot.worker import Worker
from storage.db import make_engine
from storage.models.inbox import EventStatus
from tests import ingest_events as factory
from tests.ingest_support import (
    OLD_SECRET,
    SECRET,
    app_client,
    applications,
    inbox_row,
    inbox_rows,
    make_settings,
    recording_handler,
    registered,
)
from tests.signing import signature_header, stripe_signature


def post(client, body: bytes, header: str | None = None, **headers):
    if header is not None:
        headers["Stripe-Signature"] = header.encode("latin-1")  # bytes: non-ASCII cases too
    return client.post("/stripe/webhook", content=body, headers=headers)


def signed_post(client, value: dict, secret: str = SECRET):
    body = factory.body(value)
    return post(client, body, stripe_signature(body, secret))


def test_signed_event_is_stored_exactly_as_received_before_200(engine):
    value = factory.event("customer.created", created=1_760_000_000)
    body = factory.body(value)
    with app_client(engine) as client:
        response = post(client, body, stripe_signature(body, SECRET))
    assert response.status_code == 200
    assert response.json() == {"received": True}
    row = inbox_row(engine, value["id"])
    assert row is not None
    assert row.payload == body.decode()
    assert (row.type, row.api_version, row.livemode) == (
        "customer.created",
        "2026-07-29.dahlia",
        False,
    )
    assert row.created == datetime.fromtimestamp(1_760_000_000, UTC)
    assert row.object_id == value["data"]["object"]["id"]
    assert (row.source, row.status, row.attempts) == ("webhook", EventStatus.PENDING, 0)


def test_duplicate_delivery_is_acknowledged_stored_once_and_applied_once(engine):
    value = factory.event(factory.TEST_TYPE)
    body = factory.body(value)
    with registered(factory.TEST_TYPE, recording_handler), app_client(engine) as client:
        first = post(client, body, stripe_signature(body, SECRET))
        second = post(client, body, stripe_signature(body, SECRET, timestamp=int(time.time()) + 1))
        Worker(engine=engine).drain()
        third = post(client, body, stripe_signature(body, SECRET))
        Worker(engine=engine).drain()
    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 200]
    assert second.json() == {"received": True, "duplicate": True}
    assert len(inbox_rows(engine)) == 1
    assert inbox_row(engine, value["id"]).status == EventStatus.APPLIED
    assert applications(engine) == {value["id"]: 1}


def _bad_signatures(body: bytes) -> dict[str, str | None]:
    now = int(time.time())
    resigned = factory.body(json.loads(body) | {"type": "customer.deleted"})
    return {
        "missing": None,
        "empty": "",
        "malformed": "i'm not a signature header",
        "no v1 entry": stripe_signature(body, SECRET).replace("v1=", "v0="),
        "wrong secret": stripe_signature(body, "whsec_someone_else"),
        "bad v1": f"t={now},v1=" + "0" * 64,
        "non-ascii v1": f"t={now},v1=é",
        "stale (over five minutes)": stripe_signature(body, SECRET, timestamp=now - 301),
        "signature of another body": stripe_signature(resigned, SECRET),
    }


@pytest.mark.parametrize("case", list(_bad_signatures(b"{}")))
def test_bad_signatures_are_refused_and_nothing_is_stored(engine, case):
    body = factory.body(factory.event())
    with app_client(engine) as client:
        response = post(client, body, _bad_signatures(body)[case])
    assert response.status_code == 400
    assert "error" in response.json()
    assert inbox_rows(engine) == []


def test_rolled_secrets_two_v1_entries_or_two_configured_secrets(sqlite_engine):
    both = factory.event()
    body_both = factory.body(both)
    old_only = factory.event()
    body_old = factory.body(old_only)
    with app_client(sqlite_engine, stripe_webhook_secret=f"{SECRET},{OLD_SECRET}") as client:
        # Stripe signs with both the old and the new secret while one is being rolled.
        assert (
            post(client, body_both, signature_header(body_both, [OLD_SECRET, SECRET])).status_code
            == 200
        )
        # An endpoint still on the old secret, with both configured here.
        assert post(client, body_old, stripe_signature(body_old, OLD_SECRET)).status_code == 200
    with app_client(sqlite_engine, stripe_webhook_secret=SECRET) as client:
        late = factory.event()
        body_late = factory.body(late)
        assert post(client, body_late, stripe_signature(body_late, OLD_SECRET)).status_code == 400
    assert {row.id for row in inbox_rows(sqlite_engine)} == {both["id"], old_only["id"]}


@pytest.mark.parametrize(
    "body",
    [
        b"not json at all",
        b'{"id": "evt_1", "object": "event"',
        b"\xff\xfe not utf-8",
        b'{"id": "cus_1", "object": "customer"}',
        b"[1, 2, 3]",
        b'{"id": "evt_1", "object": "event", "type": "customer.created", "created": 1700000000}',
    ],
    ids=["garbage", "truncated", "not-utf8", "not-an-event", "array", "no-data-object"],
)
def test_signed_bodies_that_are_not_events_are_refused(engine, body):
    with app_client(engine) as client:
        response = post(client, body, stripe_signature(body, SECRET))
    assert response.status_code == 400
    assert inbox_rows(engine) == []


def test_bodies_over_the_limit_are_refused_with_413(sqlite_engine):
    big = factory.event(obj=factory.customer() | {"description": "x" * (1024 * 1024)})
    body = factory.body(big)

    def chunks():  # no Content-Length: the streamed size is checked too
        for start in range(0, len(body), 64 * 1024):
            yield body[start : start + 64 * 1024]

    with app_client(sqlite_engine) as client:
        declared = post(client, body, stripe_signature(body, SECRET))
        streamed = post(client, chunks(), stripe_signature(body, SECRET))
        small_limit = factory.body(factory.event())
    assert declared.status_code == 413
    assert streamed.status_code == 413
    with app_client(sqlite_engine, webhook_max_body_bytes=len(small_limit) - 1) as client:
        assert post(client, small_limit, stripe_signature(small_limit, SECRET)).status_code == 413
    assert inbox_rows(sqlite_engine) == []


@pytest.mark.parametrize(
    "url",
    ["postgresql+psycopg://postgres@127.0.0.1:1/test", "sqlite:///{tmp}/no/such/dir/billbot.db"],
    ids=["postgres-closed-port", "sqlite-missing-dir"],
)
def test_database_down_answers_503_for_webhook_and_healthz(tmp_path, url):
    engine = make_engine(url.format(tmp=tmp_path))
    try:
        with app_client(engine) as client:
            webhook = signed_post(client, factory.event())
            health = client.get("/healthz")
    finally:
        engine.dispose()
    assert webhook.status_code == 503
    assert "retry" in webhook.json()["error"]
    assert health.status_code == 503
    assert health.json()["status"] == "unavailable"


def test_healthz_ok_when_the_database_answers(engine):
    with app_client(engine) as client:
        response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_without_a_secret_webhooks_are_refused_and_startup_says_so(sqlite_engine, caplog):
    caplog.set_level(logging.INFO)
    with app_client(sqlite_engine, stripe_webhook_secret="") as client:
        response = signed_post(client, factory.event())
    assert response.status_code == 503
    assert "STRIPE_WEBHOOK_SECRET" in response.json()["error"]
    disabled = [r for r in caplog.records if "stripe.webhooks_disabled" in r.getMessage()]
    assert len(disabled) == 1
    assert inbox_rows(sqlite_engine) == []


def test_refused_mode_is_recorded_as_ignored_and_acknowledged(engine):
    test_event, live_event = (
        factory.event(factory.TEST_TYPE),
        factory.event(factory.TEST_TYPE, livemode=True),
    )
    with registered(factory.TEST_TYPE, recording_handler):
        with app_client(engine, stripe_accept_test_events=False) as client:
            assert signed_post(client, test_event).status_code == 200
            assert signed_post(client, live_event).status_code == 200
        Worker(engine=engine).drain()
    refused = inbox_row(engine, test_event["id"])
    assert refused.status == EventStatus.IGNORED
    assert "STRIPE_ACCEPT_TEST_EVENTS" in refused.last_error
    assert inbox_row(engine, live_event["id"]).status == EventStatus.APPLIED
    assert applications(engine) == {live_event["id"]: 1}


def test_unknown_types_and_invoice_upcoming_are_acknowledged_then_ignored(engine):
    unknown, upcoming = factory.event(factory.UNKNOWN_TYPE), factory.upcoming_invoice_event()
    with app_client(engine) as client:
        assert signed_post(client, unknown).status_code == 200
        assert signed_post(client, upcoming).status_code == 200
    assert inbox_row(engine, upcoming["id"]).object_id is None
    result = Worker(engine=engine).drain()
    assert result.ignored == 2
    assert {row.status for row in inbox_rows(engine)} == {EventStatus.IGNORED}


def test_embedded_worker_applies_after_the_response(sqlite_engine):
    value = factory.event(factory.TEST_TYPE)
    with (
        registered(factory.TEST_TYPE, recording_handler),
        app_client(sqlite_engine, worker_embedded=True) as client,
    ):
        assert signed_post(client, value).status_code == 200
        status = wait_for_status(sqlite_engine, value["id"], EventStatus.APPLIED)
    assert status == EventStatus.APPLIED
    assert applications(sqlite_engine) == {value["id"]: 1}


def wait_for_status(engine, event_id: str, wanted: str, *, within: float = 20.0) -> str | None:
    """Poll (not sleep-and-assert): returns as soon as the worker thread got there."""
    deadline = time.monotonic() + within
    while True:
        row = inbox_row(engine, event_id)
        if (row is not None and row.status == wanted) or time.monotonic() > deadline:
            return row.status if row is not None else None
        time.sleep(0.01)


def test_verifier_agrees_with_stripes_signature_vectors(reference_dir):
    vectors = json.loads((reference_dir / "stripe" / "webhook_signature_vectors.json").read_text())
    for case in vectors["cases"]:
        payload = case.get("payload_override", vectors["payload_exact_bytes"])
        secret = case.get("secret_override", vectors["secret"])
        tolerance = case.get("tolerance", 300)  # an explicit null means "no age check"
        accepted = case["expect"].lower().startswith(("ok", "accepted"))
        now = case.get("now", case.get("t", 1_700_000_000))
        with time_machine.travel(datetime.fromtimestamp(now, UTC), tick=False):
            if accepted:
                verify_signature(payload, case["header"], [secret], tolerance=tolerance)
            else:
                with pytest.raises(SignatureVerificationError):
                    verify_signature(payload, case["header"], [secret], tolerance=tolerance)


@pytest.mark.parametrize("length", [1, 38, 63, 64, 65, 200])
def test_verifier_keys_hmac_as_the_hmac_module_does_for_any_secret_length(length):
    """The verifier keys each secret's HMAC once and copies it per request: it must give the
    MACs Stripe's scheme does for secrets shorter and longer than SHA-256's 64-byte block."""
    secret = ("whsec_é" * 40)[:length]
    body = b'{"object":"event"}' * length
    verify_signature(body, stripe_signature(body, secret), [secret])
    verify_signature(body, stripe_signature(body, secret), ["whsec_other", secret])
    with pytest.raises(SignatureVerificationError):
        verify_signature(body, stripe_signature(body, secret + "x"), [secret])
    with pytest.raises(SignatureVerificationError):
        verify_signature(body + b" ", stripe_signature(body, secret), [secret])


def test_concurrent_deliveries_over_real_http_are_group_committed_once_each(engine):
    """A real uvicorn server and 48 concurrent requests: batches form, duplicates inside a
    batch are still stored once, and every 200 means the row is there."""
    values = [factory.event(factory.TEST_TYPE) for _ in range(32)]
    deliveries = values + values[:16]  # sixteen second deliveries, racing the first ones
    settings = make_settings(engine.url.render_as_string(hide_password=False))
    with running_server(create_app(settings, engine=engine)) as base_url:
        statuses = asyncio.run(_post_all(base_url, deliveries))
    assert statuses == [200] * len(deliveries)
    assert sorted(row.id for row in inbox_rows(engine)) == sorted(v["id"] for v in values)
    with registered(factory.TEST_TYPE, recording_handler):
        Worker(engine=engine).drain()
    assert applications(engine) == {v["id"]: 1 for v in values}


async def _post_all(base_url: str, values: list[dict]) -> list[int]:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:

        async def deliver(value: dict) -> int:
            body = factory.body(value)
            headers = {"Stripe-Signature": stripe_signature(body, SECRET)}
            response = await client.post("/stripe/webhook", content=body, headers=headers)
            return response.status_code

        return list(await asyncio.gather(*(deliver(v) for v in values)))


@contextmanager
def running_server(app) -> Iterator[str]:
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.started, "uvicorn did not start"
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)

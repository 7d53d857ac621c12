"""The revenue digest: the period in local days (DST-safe), the figures from the ledger and
the store, one post per period, and the weekly chart uploaded once through Slack's files API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slack_sdk import WebClient

from handlers.jobs.digest import digest_period, send_digest
from handlers.slack.job_blocks import DIGEST_CHART_ABOVE
from storage.db import session_scope
from storage.models import MrrMovement, PostedItem
from storage.models.ledger import LEDGER_SCALE
from tests.jobs.conftest import BOT_TOKEN, job_settings, outbox, rows
from tests.slack.factories import add_invoice, add_subscription

MONDAY_0900 = datetime(2026, 3, 30, 7, 0, tzinfo=UTC)  # CEST, the day after the change


def movement(engine, customer: str, kind: str, dollars: int, at: datetime) -> None:
    with session_scope(engine) as session:
        session.add(
            MrrMovement(
                customer_id=customer,
                currency="usd",
                kind=kind,
                amount=dollars * 100 * LEDGER_SCALE,
                mrr_after=0,
                occurred_at=at,
                event_id=f"evt_{customer}_{kind}_{int(at.timestamp())}",
            )
        )


def seed(engine) -> None:
    movement(engine, "cus_a", "new", 49, datetime(2026, 3, 10, tzinfo=UTC))  # before the week
    movement(engine, "cus_b", "new", 100, datetime(2026, 3, 25, 9, 0, tzinfo=UTC))
    movement(engine, "cus_a", "expansion", 50, datetime(2026, 3, 26, 9, 0, tzinfo=UTC))
    movement(engine, "cus_c", "new", 20, datetime(2026, 3, 29, 21, 30, tzinfo=UTC))  # 23:30 CEST
    movement(engine, "cus_d", "new", 999, datetime(2026, 3, 29, 22, 30, tzinfo=UTC))  # Monday 00:30
    with session_scope(engine) as session:
        add_invoice(
            session, id="in_open", status="open", amount_due=4900, attempted=True, attempt_count=2
        )
        add_invoice(
            session,
            id="in_back",
            status="paid",
            amount_due=9900,
            amount_paid=9900,
            attempted=True,
            attempt_count=2,
            paid_at=datetime(2026, 3, 27, tzinfo=UTC),
        )
        trial_end = {"trial_end": datetime(2026, 3, 25, tzinfo=UTC)}
        add_subscription(session, id="sub_won", customer_id="cus_b", status="active", **trial_end)
        add_subscription(
            session, id="sub_lost", customer_id="cus_e", status="canceled", **trial_end
        )
        add_subscription(
            session,
            id="sub_soon",
            customer_id="cus_f",
            status="trialing",
            trial_end=MONDAY_0900 + timedelta(days=3),
        )


def fields(message) -> dict[str, str]:
    section = next(b for b in message.payload["blocks"] if b.get("fields"))
    return dict(f["text"].split("\n", 1) for f in section["fields"])


def test_weekly_period_is_the_seven_local_days_before_the_digest_weekday():
    settings = job_settings()
    period = digest_period(MONDAY_0900 + timedelta(days=3), settings)  # a run on Thursday
    assert period.key == "digest:weekly:2026-03-23"
    assert period.start.astimezone(UTC) == datetime(2026, 3, 22, 23, 0, tzinfo=UTC)  # CET
    assert period.end.astimezone(UTC) == datetime(2026, 3, 29, 22, 0, tzinfo=UTC)  # CEST
    daily = digest_period(MONDAY_0900, job_settings(digest_frequency="daily"))
    assert daily.key == "digest:daily:2026-03-29"
    length = daily.end.astimezone(UTC) - daily.start.astimezone(UTC)
    assert length == timedelta(hours=23)  # the short day of the change


def test_weekly_digest_posts_figures_and_the_chart_once(engine, slack_api):
    seed(engine)
    settings = job_settings()
    slack = WebClient(token=BOT_TOKEN, base_url=slack_api.base_url)

    result = send_digest(engine=engine, settings=settings, now=MONDAY_0900, slack=slack)

    [message] = outbox(engine, "digest")
    assert message.channel == "#revenue"
    got = fields(message)
    assert got["*MRR*"] == "$219.00"  # 49 + 100 + 50 + 20; Monday's $999 is next week's
    assert got["*Change*"] == "+$170.00 (+346.9%)"
    assert got["*Active customers*"] == "3"
    assert got["*Failed payments open now*"] == "1 · $49.00"
    assert got["*Recovered in the period*"] == "1 · $99.00"
    assert got["*Trials*"].startswith("1 · $49.00/mo converted")
    assert "1 ended unpaid · 1 ending in the next 7 days" in got["*Trials*"]
    movements = next(
        b for b in message.payload["blocks"] if "*Movements*" in b.get("text", {}).get("text", "")
    )
    assert "New: +$120.00 (2)" in movements["text"]["text"]
    assert "Expansion: +$50.00 (1)" in movements["text"]["text"]
    assert any(DIGEST_CHART_ABOVE in str(b) for b in message.payload["blocks"])
    [complete] = slack_api.calls_to("files.completeUploadExternal")
    assert complete.params["channel_id"] == "#revenue"
    [upload] = slack_api.calls_to("upload")
    assert upload.params["bytes"] > 1000  # the PNG went to the upload URL before completing
    assert result.posted == [
        "digest:weekly:2026-03-23:chart to #revenue",
        "digest:weekly:2026-03-23 to #revenue",
    ]

    again = send_digest(
        engine=engine, settings=settings, now=MONDAY_0900 + timedelta(hours=4), slack=slack
    )
    assert again.skipped == ["digest:weekly:2026-03-23 was already posted"]
    assert len(outbox(engine, "digest")) == 1
    assert len(slack_api.calls_to("files.completeUploadExternal")) == 1


def test_a_refused_chart_upload_is_forgotten_and_the_digest_still_goes_out(engine, slack_api):
    seed(engine)
    slack_api.fail("files.getUploadURLExternal", error="not_allowed_token_type")
    slack = WebClient(token=BOT_TOKEN, base_url=slack_api.base_url)
    result = send_digest(engine=engine, settings=job_settings(), now=MONDAY_0900, slack=slack)
    [message] = outbox(engine, "digest")
    assert not any(DIGEST_CHART_ABOVE in str(b) for b in message.payload["blocks"])
    assert result.failed == ["chart: SlackApiError"]
    assert {r.key for r in rows(engine, PostedItem)} == {"digest:weekly:2026-03-23"}


def test_daily_digest_has_no_chart_and_console_mode_posts_to_the_console_channel(engine):
    seed(engine)
    settings = job_settings(digest_frequency="daily", slack_channel_digest=None)
    result = send_digest(engine=engine, settings=settings, now=MONDAY_0900)
    [message] = outbox(engine, "digest")
    assert message.channel == "#billbot-console"
    assert fields(message)["*MRR*"] == "$219.00"
    assert "Daily" not in message.payload["text"] and "Sun, Mar 29" in message.payload["text"]
    assert result.notes == []

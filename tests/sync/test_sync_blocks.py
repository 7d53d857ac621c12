"""The drift report and webhook warnings as Block Kit: plain asserts on the pure builders."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from decimal import Decimal

from handlers.slack.sync_blocks import (
    DRIFT_HEADER,
    NEVER,
    SILENCE_HEADER,
    drift_report_message,
    webhook_warning_message,
)
from handlers.sync.drift import DriftReport
from handlers.sync.webhook_warning import WebhookWarning, WebhookWarningKind

SINCE = datetime(2026, 2, 1, tzinfo=UTC)


def report(**overrides) -> DriftReport:
    values = {
        "since": SINCE,
        "missed_events": Counter({"invoice.paid": 2, "customer.subscription.deleted": 1}),
        "missed_event_ids": ["evt_1", "evt_2", "evt_3"],
        "checked": Counter({"subscriptions": 40, "invoices": 3}),
        "drifted": {"subscriptions": [f"sub_{n}" for n in range(12)], "invoices": ["in_1"]},
        "mrr_before": {"usd": Decimal(123450), "jpy": Decimal(5000)},
        "mrr_after": {"usd": Decimal(100000), "jpy": Decimal(5000)},
    }
    values.update(overrides)
    return DriftReport(**values)


def texts(message: dict) -> str:
    parts = []
    for block in message["blocks"]:
        if "text" in block:
            parts.append(block["text"]["text"])
        parts += [field["text"] for field in block.get("fields", [])]
        parts += [element["text"] for element in block.get("elements", [])]
    return "\n".join(parts)


def test_drift_report_says_what_drifted_and_the_mrr_difference():
    message = drift_report_message(report())
    body = texts(message)
    assert message["blocks"][0]["text"]["text"] == DRIFT_HEADER
    assert message["text"] == "Reconciliation repaired 13 objects and re-queued 3 missed events"
    assert "*Repaired 13 objects* (1 invoices, 12 subscriptions)" in body
    assert "`sub_9` and 2 more" in body and "`sub_10`" not in body
    assert "3 re-queued: customer.subscription.deleted ×1, invoice.paid ×2" in body
    assert "*MRR (USD)*\n$1,234.50 → $1,000.00 (-$234.50)" in body
    assert "JPY" not in body  # unchanged currencies are left out
    assert "Checked 3 invoices, 40 subscriptions" in body and "<!date^1769904000^" in body


def test_only_missed_events_or_drift_make_a_report_worth_posting():
    assert not report(
        missed_events=Counter(), missed_event_ids=[], drifted={}, gone=["sub_x"]
    ).worth_posting
    assert report(drifted={}).worth_posting
    quiet = drift_report_message(report(missed_events=Counter(), drifted={}, gone=["sub_x"]))
    assert "*No longer in Stripe:* `sub_x`" in texts(quiet)


def test_dedupe_key_follows_the_findings():
    assert report().dedupe_key() == report().dedupe_key()
    assert report().dedupe_key() != report(missed_event_ids=["evt_9"]).dedupe_key()
    read = datetime(2026, 3, 1, tzinfo=UTC)
    assert report(read_at=read).dedupe_key() != report(read_at=SINCE).dedupe_key()


def test_webhook_warnings():
    silence = webhook_warning_message(
        WebhookWarning(
            WebhookWarningKind.SILENCE, since=None, incident_key="k", active_subscriptions=4
        )
    )
    assert silence["text"] == SILENCE_HEADER
    assert f"since {NEVER}, while 4 subscriptions are active" in texts(silence)
    spike = webhook_warning_message(
        WebhookWarning(
            WebhookWarningKind.SIGNATURE_FAILURES, since=SINCE, incident_key="k", count=9
        )
    )
    assert "9 webhook requests were refused for a bad signature since <!date^" in texts(spike)
    assert "STRIPE_WEBHOOK_SECRET=whsec_new,whsec_old" in texts(spike)

"""Housekeeping: failed messages re-queued once each, pruning by the retention settings, and
the inbox backlog watch. Against SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from handlers.jobs.housekeeping import run_housekeeping
from storage.db import session_scope
from storage.models import (
    EventStatus,
    JobRun,
    OutboxMessage,
    OutboxStatus,
    PostedItem,
    RunStatus,
    StripeEvent,
)
from tests.jobs.conftest import NOW, job_settings, rows


def event(n: int, status: str, age: timedelta, **extra) -> StripeEvent:
    at = NOW - age
    return StripeEvent(
        id=f"evt_{n}",
        type="invoice.paid",
        created=at,
        payload="{}",
        received_at=at,
        status=status,
        **extra,
    )


def message(n: int, status: str, age: timedelta) -> OutboxMessage:
    return OutboxMessage(
        dedupe_key=f"m{n}",
        channel="#billing-alerts",
        operation="post",
        kind="payment_failed",
        payload={"text": "x"},
        status=status,
        attempts=10 if status == OutboxStatus.FAILED else 0,
        created_at=NOW - age,
    )


def test_prunes_only_settled_rows_older_than_their_retention(engine):
    with session_scope(engine) as session:
        session.add_all(
            [
                event(1, EventStatus.APPLIED, timedelta(days=91)),  # pruned
                event(2, EventStatus.IGNORED, timedelta(days=91)),  # pruned
                event(3, EventStatus.APPLIED, timedelta(days=89)),
                event(4, EventStatus.DEAD, timedelta(days=200)),  # evidence: kept
                message(1, OutboxStatus.SENT, timedelta(days=31)),  # pruned
                message(2, OutboxStatus.SENT, timedelta(days=29)),
                message(3, OutboxStatus.PENDING, timedelta(days=60)),  # still work: kept
                JobRun(
                    job="digest",
                    scheduled_for=NOW - timedelta(days=100),
                    trigger="schedule",
                    holder="x",
                    status=RunStatus.SUCCEEDED,
                    started_at=NOW - timedelta(days=100),
                ),
                PostedItem(
                    key="digest:weekly:old", job="digest", posted_at=NOW - timedelta(days=100)
                ),
                PostedItem(
                    key="digest:weekly:new", job="digest", posted_at=NOW - timedelta(days=1)
                ),
            ]
        )
    result = run_housekeeping(engine=engine, settings=job_settings(), now=NOW)
    assert sorted(e.id for e in rows(engine, StripeEvent)) == ["evt_3", "evt_4"]
    assert [m.dedupe_key for m in rows(engine, OutboxMessage)] == ["m2", "m3"]
    assert rows(engine, JobRun) == []
    assert [p.key for p in rows(engine, PostedItem)] == ["digest:weekly:new"]
    assert "pruned 2 inbox events older than 90 days" in result.notes
    assert "pruned 1 outbox messages older than 30 days" in result.notes

    keep_all = job_settings(inbox_retention_days=0, outbox_retention_days=0)
    run_housekeeping(engine=engine, settings=keep_all, now=NOW + timedelta(days=400))
    assert len(rows(engine, StripeEvent)) == 2 and len(rows(engine, OutboxMessage)) == 2


def test_undelivered_messages_are_requeued_once_each_while_recent(engine):
    with session_scope(engine) as session:
        session.add_all(
            [
                message(1, OutboxStatus.FAILED, timedelta(hours=2)),
                message(2, OutboxStatus.FAILED, timedelta(days=2)),  # too old to post late
                message(3, OutboxStatus.SENT, timedelta(hours=1)),
            ]
        )
    result = run_housekeeping(engine=engine, settings=job_settings(), now=NOW)
    statuses = {m.dedupe_key: (m.status, m.attempts) for m in rows(engine, OutboxMessage)}
    assert statuses == {
        "m1": (OutboxStatus.PENDING, 0),
        "m2": (OutboxStatus.FAILED, 10),
        "m3": (OutboxStatus.SENT, 0),
    }
    assert result.posted == ["re-queued 1 undelivered Slack message(s)"]
    with session_scope(engine) as session:  # the sender fails it again (channel_not_found, say)
        row = session.get(
            OutboxMessage, next(m.id for m in rows(engine, OutboxMessage) if m.dedupe_key == "m1")
        )
        row.status = OutboxStatus.FAILED
    again = run_housekeeping(engine=engine, settings=job_settings(), now=NOW + timedelta(hours=1))
    assert again.posted == [] and {m.status for m in rows(engine, OutboxMessage)} == {
        "failed",
        "sent",
    }


def test_a_backlog_nobody_works_on_is_reported(engine, caplog):
    with session_scope(engine) as session:
        session.add(event(1, EventStatus.PENDING, timedelta(minutes=30)))
        session.add(
            event(
                2,
                EventStatus.PENDING,
                timedelta(minutes=1),
                next_attempt_at=NOW + timedelta(hours=1),
            )
        )
    result = run_housekeeping(engine=engine, settings=job_settings(), now=NOW)
    assert "1 inbox event(s) due for the worker" in result.notes
    assert any(r.getMessage() == "housekeeping.inbox_stalled" for r in caplog.records)


def test_a_silent_webhook_feed_is_reported_once(engine):
    from handlers.stripe.objects import apply_object
    from tests.fakes import stripe_objects as so

    settings = job_settings(webhook_silence_hours=24)
    with session_scope(engine) as session:
        session.add(event(1, EventStatus.APPLIED, timedelta(hours=30), source="webhook"))
        sub = so.subscription(1, customer_id="cus_1", created=so.EPOCH)
        apply_object(session, sub, version_at=NOW - timedelta(hours=30))

    first = run_housekeeping(engine=engine, settings=settings, now=NOW)
    second = run_housekeeping(engine=engine, settings=settings, now=NOW + timedelta(hours=1))

    assert [line for line in first.posted if "webhook" in line] != []
    assert not [line for line in second.posted if "webhook" in line]
    warnings = [m for m in rows(engine, OutboxMessage) if m.kind == "webhook_silence"]
    assert len(warnings) == 1 and warnings[0].channel == "#billing-alerts"

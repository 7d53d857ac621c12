"""Reconciliation against the stand-in with the real conversion, ledger, inbox and outbox:
a missed cancellation, a missed payment, missed events, and the drift report posted once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import select

from bot.settings import Settings
from handlers.sync.drift import drift_report_text
from handlers.sync.jobs import run_reconcile
from handlers.sync.reconcile import Reconciler
from storage import sync as cursors
from storage.db import read_scope, session_scope
from storage.models import Charge, Invoice, StripeEvent, Subscription
from tests.fakes import stripe_objects as so
from tests.sync.support import (
    SLACK,
    alert_rows,
    ledger,
    ledger_agrees_with_store,
    outbox_rows,
    receive,
    timeline,
    work,
)

DAY = 86400


def stripe_now(clock) -> int:
    return int(clock.now().timestamp())


@pytest.fixture
def slack_settings(settings) -> Settings:
    return settings.model_copy(update=SLACK)


def reconcile(engine, slack_settings, client, pacer, clock, **kwargs):
    return run_reconcile(
        engine=engine, settings=slack_settings, client=client, pacer=pacer, now=clock.now, **kwargs
    )


def known_by_webhook(engine, settings, clock):
    """Two customers' subscriptions and an open invoice, as webhooks delivered them."""
    now = stripe_now(clock)
    sub_a = so.subscription(1, customer_id="cus_1", created=now - 20 * DAY)
    sub_b = so.subscription(2, customer_id="cus_2", created=now - 10 * DAY, unit_amount=1000)
    invoice = so.invoice(1, customer_id="cus_1", created=now - 3600, status="open")
    receive(
        engine,
        so.event(11, type="customer.subscription.created", obj=sub_a, created=now - 20 * DAY),
        so.event(12, type="customer.subscription.created", obj=sub_b, created=now - 10 * DAY),
        so.event(13, type="invoice.finalized", obj=invoice, created=now - 3600),
    )
    assert work(engine, settings) == 3
    return sub_a, sub_b, invoice


def test_repairs_a_missed_cancellation_and_a_missed_payment(
    engine, slack_settings, client, pacer, clock, stand_in
):
    now = stripe_now(clock)
    sub_a, sub_b, open_invoice = known_by_webhook(engine, slack_settings, clock)
    canceled_a = {**sub_a, "status": "canceled", "canceled_at": now - 600, "ended_at": now - 600}
    paid = {
        **open_invoice,
        "status": "paid",
        "amount_paid": 2000,
        "amount_remaining": 0,
        "status_transitions": {"paid_at": now - 500},
    }
    refunded = so.charge(1, customer_id="cus_1", created=now - 900, refunded=500)
    stand_in.add("subscriptions", canceled_a, sub_b)
    stand_in.add("invoices", paid)
    stand_in.add(
        "events",
        so.event(1, type="customer.subscription.deleted", obj=canceled_a, created=now - 600),
        so.event(2, type="invoice.paid", obj=paid, created=now - 500),
        so.event(3, type="charge.refunded", obj=refunded, created=now - 400),
        so.event(11, type="customer.subscription.created", obj=sub_a, created=now - 20 * DAY),
        so.event(4, type="invoice.paid", obj=paid, created=now - 40 * DAY),  # past 30 days
    )

    report = reconcile(engine, slack_settings, client, pacer, clock)

    assert report.drifted == {"subscriptions": [sub_a["id"]], "invoices": [open_invoice["id"]]}
    assert report.checked == {"subscriptions": 2, "invoices": 1}
    assert dict(report.missed_events) == {
        "customer.subscription.deleted": 1,
        "invoice.paid": 1,
        "charge.refunded": 1,
    }
    assert report.mrr_before == {"usd": 3000} and report.mrr_after == {"usd": 1000}
    with read_scope(engine) as session:
        assert session.get(Subscription, sub_a["id"]).status == "canceled"
        assert session.get(Invoice, open_invoice["id"]).status == "paid"
        queued = session.exec(select(StripeEvent).where(StripeEvent.source == "reconcile")).all()
        assert sorted(e.id for e in queued) == ["evt_00000001", "evt_00000002", "evt_00000003"]
        assert {e.status for e in queued} == {"pending"}
    canceled_at = clock.now().replace(microsecond=0) - timedelta(seconds=600)
    assert ledger(engine, "cus_1")[-1][:2] == ("churn", canceled_at)
    assert ("subscription_canceled", canceled_at) in timeline(engine, "cus_1")
    assert "invoice_paid" in {kind for kind, _ in timeline(engine, "cus_1")}
    assert int(stand_in.served("events")[0].query["created[gte]"]) > now - 30 * DAY
    retrieved = [r.path for r in stand_in.served() if r.path.count("/") == 3]
    assert retrieved == [f"/v1/subscriptions/{sub_a['id']}", f"/v1/invoices/{open_invoice['id']}"]

    [message] = outbox_rows(engine)
    assert (message.channel, message.kind, report.queued) == ("#digest", "drift_report", True)
    assert "Repaired 2 objects" in message.payload["blocks"][1]["text"]["text"]
    text = drift_report_text(report)
    assert "1 invoices, 1 subscriptions" in text and "Re-queued 3 missed webhook events" in text
    assert "$30.00 before repair, $10.00 after (-$20.00)" in text

    # The missed events are history: the worker applies them (the refund is news to the
    # store) and nothing alerts; the drift report was the notice.
    assert work(engine, slack_settings) == 3
    with read_scope(engine) as session:
        assert session.get(Charge, refunded["id"]).amount_refunded == 500
    assert alert_rows(engine) == [] and len(outbox_rows(engine)) == 1
    assert ledger_agrees_with_store(engine) == {}

    # Nothing drifted since: a second run finds nothing and posts nothing.
    clock.sleep(3600)
    again = reconcile(engine, slack_settings, client, pacer, clock)
    assert not again.something_was_wrong and not again.queued
    assert len(outbox_rows(engine)) == 1

    # New drift (another missed cancellation) is a new report.
    clock.sleep(3600)
    stand_in.replace(
        "subscriptions", {**sub_b, "status": "canceled", "canceled_at": now, "ended_at": now}
    )
    third = reconcile(engine, slack_settings, client, pacer, clock)
    assert third.drifted == {"subscriptions": [sub_b["id"]]} and third.queued
    assert [m.kind for m in outbox_rows(engine)] == ["drift_report", "drift_report"]


def test_the_same_findings_are_reported_once(
    sqlite_engine, slack_settings, client, pacer, clock, stand_in
):
    now = stripe_now(clock)
    customer = so.customer(1, created=so.EPOCH)
    stand_in.add("events", so.event(1, type="customer.updated", obj=customer, created=now - 60))

    def refeed_nothing(session, event):  # as if the first run's insert were lost
        return True

    first = reconcile(
        sqlite_engine, slack_settings, client, pacer, clock, refeed_event=refeed_nothing
    )
    second = reconcile(
        sqlite_engine, slack_settings, client, pacer, clock, refeed_event=refeed_nothing
    )

    assert first.queued and not second.queued
    assert first.dedupe_key() == second.dedupe_key()
    assert len(outbox_rows(sqlite_engine)) == 1


def test_nothing_wrong_means_no_report(
    sqlite_engine, slack_settings, client, pacer, clock, stand_in
):
    sub = so.subscription(1, customer_id="cus_1", created=so.EPOCH)
    with session_scope(sqlite_engine) as session:
        from handlers.stripe.objects import apply_object

        apply_object(session, sub, version_at=clock.now() - timedelta(days=1))
    stand_in.add("subscriptions", sub)

    report = reconcile(sqlite_engine, slack_settings, client, pacer, clock)

    assert report.checked == {"subscriptions": 1} and not report.something_was_wrong
    assert drift_report_text(report) is None and outbox_rows(sqlite_engine) == []


def test_newer_webhook_state_is_not_called_drift(
    sqlite_engine, client, pacer, clock, stand_in, recorder
):
    past_due = {**so.subscription(1, customer_id="cus_1", created=so.EPOCH), "status": "past_due"}
    with session_scope(sqlite_engine) as session:
        recorder(
            session,
            past_due,
            version_at=clock.now() + timedelta(seconds=5),
            source_event_id="evt_new",
        )
    stand_in.add("subscriptions", so.subscription(1, customer_id="cus_1", created=so.EPOCH))

    report = Reconciler(
        engine=sqlite_engine, client=client, pacer=pacer, apply_object=recorder, now=clock.now
    ).run()

    assert report.drifted == {}
    with read_scope(sqlite_engine) as session:
        assert session.get(Subscription, "sub_00000001").status == "past_due"


def test_events_older_than_a_complete_backfill_are_not_refed(
    sqlite_engine, client, pacer, clock, stand_in, recorder
):
    now = stripe_now(clock)
    with session_scope(sqlite_engine) as session:
        for name in ("customers", "subscriptions", "invoices", "charges", "refunds"):
            cursors.start_or_resume(
                session=session, object_type=name, since=None, now=clock.now() - timedelta(hours=1)
            )
            cursors.finish(session=session, object_type=name, now=clock.now())
    customer = so.customer(1, created=so.EPOCH)
    stand_in.add(
        "events",
        so.event(1, type="customer.updated", obj=customer, created=now - 7200),
        so.event(2, type="customer.updated", obj=customer, created=now - 60),
    )

    report = Reconciler(
        engine=sqlite_engine, client=client, pacer=pacer, apply_object=recorder, now=clock.now
    ).run()

    assert dict(report.missed_events) == {"customer.updated": 1}
    assert stand_in.served("events")[0].query["created[gte]"] == str(now - 3600)

"""Reconciliation against the stand-in: a missed cancellation, a missed payment, missed events."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from handlers.sync.reconcile import Reconciler, drift_report_text
from storage import sync as cursors
from storage.db import read_scope, session_scope
from storage.models import Invoice, StripeEvent, Subscription, SubscriptionItem
from tests.fakes import stripe_objects as so


def store(engine, local_apply, obj, *, version_at):
    with session_scope(engine) as session:
        local_apply(session, obj, version_at=version_at, source_event_id="evt_seen")


def add_item(engine, sub_id, *, unit_amount=2000):
    with session_scope(engine) as session:
        session.add(
            SubscriptionItem(
                id=f"si_{sub_id}",
                subscription_id=sub_id,
                currency="usd",
                unit_amount=unit_amount,
                interval="month",
            )
        )


def stripe_now(clock) -> int:
    return int(clock.now().timestamp())


def test_repairs_a_missed_cancellation_and_a_missed_payment(
    engine, client, pacer, clock, stand_in, local_apply
):
    now = stripe_now(clock)
    earlier = clock.now() - timedelta(days=2)
    active_a = so.subscription(1, customer_id="cus_1", created=so.EPOCH)
    active_b = so.subscription(2, customer_id="cus_2", created=so.EPOCH + 1)
    open_invoice = so.invoice(1, customer_id="cus_1", created=now - 3600, status="open")
    for obj in (active_a, active_b, open_invoice):
        store(engine, local_apply, obj, version_at=earlier)
    add_item(engine, active_a["id"])
    add_item(engine, active_b["id"], unit_amount=1000)

    canceled_a = {**active_a, "status": "canceled", "canceled_at": now - 600, "ended_at": now - 600}
    paid_invoice = so.invoice(1, customer_id="cus_1", created=now - 3600, status="paid")
    stand_in.add("subscriptions", canceled_a, active_b)
    stand_in.add("invoices", paid_invoice)
    stand_in.add(
        "events",
        so.event(1, type="customer.subscription.deleted", obj=canceled_a, created=now - 600),
        so.event(2, type="invoice.paid", obj=paid_invoice, created=now - 500),
        so.event(
            3, type="customer.updated", obj=so.customer(1, created=so.EPOCH), created=now - 400
        ),
        so.event(
            4, type="invoice.paid", obj=paid_invoice, created=now - 40 * 86400
        ),  # beyond Stripe's 30 days
    )
    with session_scope(engine) as session:  # evt 3 arrived by webhook
        session.add(
            StripeEvent(
                id="evt_00000003", type="customer.updated", created=clock.now(), payload="{}"
            )
        )

    report = Reconciler(
        engine=engine, client=client, pacer=pacer, apply_object=local_apply, now=clock.now
    ).run()

    assert report.drifted == {"subscriptions": [active_a["id"]], "invoices": [open_invoice["id"]]}
    assert report.checked == {"subscriptions": 2, "invoices": 1}
    assert dict(report.missed_events) == {"customer.subscription.deleted": 1, "invoice.paid": 1}
    assert report.mrr_before == {"usd": 3000} and report.mrr_after == {"usd": 1000}
    with read_scope(engine) as session:
        assert session.get(Subscription, active_a["id"]).status == "canceled"
        assert session.get(Invoice, open_invoice["id"]).status == "paid"
        queued = session.exec(select(StripeEvent).where(StripeEvent.source == "reconcile")).all()
        assert sorted(e.id for e in queued) == ["evt_00000001", "evt_00000002"]
        assert all(e.status == "pending" for e in queued)
    events_query = stand_in.served("events")[0].query
    assert int(events_query["created[gte]"]) > now - 30 * 86400
    retrieved = [r.path for r in stand_in.served() if r.path.count("/") == 3]
    assert retrieved == [
        f"/v1/subscriptions/{active_a['id']}",
        f"/v1/invoices/{open_invoice['id']}",
    ]

    text = drift_report_text(report)
    assert "Repaired 2 objects" in text and "1 invoices, 1 subscriptions" in text
    assert "Re-queued 2 missed webhook events" in text
    assert "$30.00 before repair, $10.00 after (-$20.00)" in text


def test_nothing_wrong_means_no_report(sqlite_engine, client, pacer, clock, stand_in, local_apply):
    sub = so.subscription(1, customer_id="cus_1", created=so.EPOCH)
    store(sqlite_engine, local_apply, sub, version_at=clock.now() - timedelta(days=1))
    stand_in.add("subscriptions", sub)

    report = Reconciler(
        engine=sqlite_engine, client=client, pacer=pacer, apply_object=local_apply, now=clock.now
    ).run()

    assert report.checked == {"subscriptions": 1} and not report.something_was_wrong
    assert drift_report_text(report) is None


def test_newer_webhook_state_is_not_called_drift(
    sqlite_engine, client, pacer, clock, stand_in, local_apply
):
    past_due = {**so.subscription(1, customer_id="cus_1", created=so.EPOCH), "status": "past_due"}
    store(sqlite_engine, local_apply, past_due, version_at=clock.now() + timedelta(seconds=5))
    stand_in.add("subscriptions", so.subscription(1, customer_id="cus_1", created=so.EPOCH))

    report = Reconciler(
        engine=sqlite_engine, client=client, pacer=pacer, apply_object=local_apply, now=clock.now
    ).run()

    assert report.drifted == {}
    with read_scope(sqlite_engine) as session:
        assert session.get(Subscription, "sub_00000001").status == "past_due"


def test_events_older_than_a_complete_backfill_are_not_refed(
    sqlite_engine, client, pacer, clock, stand_in, local_apply
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
        engine=sqlite_engine, client=client, pacer=pacer, apply_object=local_apply, now=clock.now
    ).run()

    assert dict(report.missed_events) == {"customer.updated": 1}
    assert stand_in.served("events")[0].query["created[gte]"] == str(now - 3600)

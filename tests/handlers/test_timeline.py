from __future__ import annotations

from datetime import UTC, datetime

import pytest

from storage.db import read_scope, session_scope
from storage.timeline import add_timeline_entry, timeline_for_customer
from tests import factories as f


def lines(engine, customer_id: str) -> list[tuple[str, str]]:
    with read_scope(engine) as session:
        entries = timeline_for_customer(session=session, customer_id=customer_id, limit=100)
        return [(e.kind, e.summary) for e in reversed(entries)]


def test_add_timeline_entry_is_idempotent_on_its_key(engine):
    when = datetime(2026, 1, 1, tzinfo=UTC)
    for _ in range(2):
        with session_scope(engine) as session:
            added = add_timeline_entry(session=session, customer_id="cus_1", occurred_at=when, kind="note",
                                       summary="Called the customer", source_key="task_1:note", actor="U123")  # fmt: skip
    assert added is False
    assert lines(engine, "cus_1") == [("note", "Called the customer")]


def test_subscription_lifecycle_lines(engine, apply):
    cus = "cus_life"
    basic = f.price(unit_amount=4900, nickname="Basic")
    pro = f.price(unit_amount=9900, nickname="Pro")
    line = f.item(basic)
    trial = f.subscription(
        customer=cus, items=[line], status="trialing", trial_start=f.T0, trial_end=f.T0 + 14 * f.DAY
    )
    active = dict(trial, status="active")
    upgraded = f.subscription(customer=cus, id=trial["id"], items=[f.item(pro, 2, id=line.id)])
    scheduled = dict(upgraded, cancel_at_period_end=True)
    undone = dict(upgraded, cancel_at_period_end=False)
    canceled = dict(upgraded, status="canceled", canceled_at=f.T0 + 40 * f.DAY,
                    cancellation_details={"reason": "cancellation_requested", "feedback": "too_expensive", "comment": None})  # fmt: skip
    events = [
        f.event("customer.subscription.created", trial, created=f.T0, api_version=f.NEW),
        f.event(
            "customer.subscription.trial_will_end",
            trial,
            created=f.T0 + 11 * f.DAY,
            api_version=f.NEW,
        ),
        f.event(
            "customer.subscription.updated", active, created=f.T0 + 14 * f.DAY, api_version=f.NEW
        ),
        f.event(
            "customer.subscription.updated", upgraded, created=f.T0 + 20 * f.DAY, api_version=f.NEW
        ),
        f.event(
            "customer.subscription.updated", scheduled, created=f.T0 + 30 * f.DAY, api_version=f.NEW
        ),
        f.event(
            "customer.subscription.updated", undone, created=f.T0 + 31 * f.DAY, api_version=f.NEW
        ),
        f.event(
            "customer.subscription.deleted", canceled, created=f.T0 + 40 * f.DAY, api_version=f.NEW
        ),
    ]
    apply(*events)
    apply(*events)  # a second delivery of everything writes nothing new
    assert lines(engine, cus) == [
        ("subscription_created", "Subscribed to Basic ($49.00/month)"),
        ("trial_started", "Trial of Basic ($49.00/month) started, ends 2026-01-15"),
        ("trial_ending", "Trial of Basic ($49.00/month) ends 2026-01-15"),
        ("plan_changed", "Plan changed from Basic ($49.00/month) to 2 × Pro ($99.00/month)"),
        ("cancellation_scheduled", "Cancellation scheduled for 2026-02-01"),
        ("cancellation_undone", "Scheduled cancellation undone"),
        (
            "subscription_canceled",
            "Subscription to 2 × Pro ($99.00/month) canceled (cancellation requested, too expensive)",
        ),
    ]


def test_stale_events_write_no_lines(engine, apply):
    sub = f.subscription(customer="cus_stale", items=[f.item(f.price(nickname="Basic"))])
    canceled = dict(sub, status="canceled", canceled_at=f.T0 + 100)
    apply(f.event("customer.subscription.deleted", canceled, created=f.T0 + 100, api_version=f.NEW))
    changes = apply(f.event("customer.subscription.updated", dict(sub, cancel_at_period_end=True), created=f.T0 + 50,
                            api_version=f.NEW))  # fmt: skip
    assert [c.applied for c in changes] == [False]
    assert changes[0].details["reason"] == "stale"
    assert [kind for kind, _ in lines(engine, "cus_stale")] == [
        "subscription_created",
        "subscription_canceled",
    ]


@pytest.mark.parametrize("api_version", f.API_VERSIONS)
def test_invoice_charge_and_refund_lines(engine, apply, api_version):
    cus = "cus_money"
    failed = f.invoice(api_version=api_version, customer=cus, number="INV-1", amount_due=1500, attempt_count=1,
                       status="open")  # fmt: skip
    paid = dict(failed, status="paid", amount_paid=1500, amount_remaining=0, attempt_count=2,
                status_transitions={"paid_at": f.T0 + 200})  # fmt: skip
    voided = f.invoice(api_version=api_version, customer=cus, number="INV-2", status="void")
    bad = f.invoice(api_version=api_version, customer=cus, number="INV-3", amount_due=700, amount_paid=0,
                    status="uncollectible")  # fmt: skip
    declined = f.charge(api_version=api_version, customer=cus, status="failed", amount=1500,
                        failure_code="card_declined", failure_message="Your card was declined.", created=f.T0 + 100)  # fmt: skip
    good = f.charge(api_version=api_version, customer=cus, amount=1500, created=f.T0 + 400)
    refund = f.refund(
        charge=good["id"], amount=500, reason="requested_by_customer", created=f.T0 + 500
    )
    apply(
        f.event("invoice.payment_failed", failed, created=f.T0 + 100, api_version=api_version),
        f.event("charge.failed", declined, created=f.T0 + 100, api_version=api_version),
        f.event("invoice.paid", paid, created=f.T0 + 200, api_version=api_version),
        f.event("invoice.payment_succeeded", paid, created=f.T0 + 200, api_version=api_version),
        f.event("invoice.voided", voided, created=f.T0 + 300, api_version=api_version),
        f.event("invoice.marked_uncollectible", bad, created=f.T0 + 300, api_version=api_version),
        f.event("charge.succeeded", good, created=f.T0 + 400, api_version=api_version),
        f.event("refund.created", refund, created=f.T0 + 500, api_version=api_version),
        f.event("charge.refund.updated", refund, created=f.T0 + 501, api_version=api_version),
    )
    assert lines(engine, cus) == [
        ("payment_failed", "Payment of $15.00 failed for invoice INV-1 (attempt 1)"),
        ("charge_failed", "Charge of $15.00 failed: Your card was declined."),
        ("invoice_paid", "Paid $15.00 for invoice INV-1"),
        ("invoice_voided", "Invoice INV-2 voided"),
        ("invoice_uncollectible", "Invoice INV-3 ($7.00) marked uncollectible"),
        ("refund_created", "Refund of $5.00 (requested by customer)"),
    ]

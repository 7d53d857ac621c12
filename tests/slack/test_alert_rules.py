"""Which applied event becomes which alert, decided from the store; one incident, one alert."""

from __future__ import annotations

from datetime import timedelta

import pytest

from handlers.slack import copy
from handlers.slack.cards import AlertFacts
from storage.db import session_scope
from storage.models import OutboxStatus
from tests.slack.conftest import make_settings
from tests.slack.factories import (
    T0,
    add_charge,
    add_customer,
    add_invoice,
    add_refund,
    add_subscription,
    alerts,
    event,
    outbox_rows,
    react,
    unix,
)

INVOICE = {"id": "in_acme", "object": "invoice", "customer": "cus_acme"}
SUB = {"id": "sub_acme", "object": "subscription", "customer": "cus_acme"}


@pytest.fixture
def settings():
    return make_settings()  # console mode: no token, #billing-alerts


@pytest.fixture
def store(engine):
    with session_scope(engine) as session:
        add_customer(session)
        add_subscription(session)
    return engine


def failed_invoice(engine, attempt=1, **extra):
    with session_scope(engine) as session:
        add_invoice(
            session,
            attempt_count=attempt,
            next_payment_attempt=T0 + timedelta(days=3 * attempt),
            **extra,
        )
        add_charge(
            session,
            id=f"ch_fail_{attempt}",
            invoice_id="in_acme",
            status="failed",
            failure_code="card_declined",
            failure_message="Your card was declined.",
            created=T0,
        )


def test_payment_failed_posts_one_alert_with_the_store_facts(store, settings):
    failed_invoice(store)
    react(store, settings, event("invoice.payment_failed", INVOICE))
    [alert] = alerts(store)
    assert (alert.kind, alert.incident_key, alert.channel) == (
        "payment_failed",
        "payment_failed:in_acme",
        "#billing-alerts",
    )
    facts = AlertFacts.model_validate(alert.facts)
    assert (facts.customer_name, facts.amount, facts.attempt, facts.mrr) == (
        "Acme Inc",
        4900,
        1,
        4900,
    )
    assert facts.decline_reason == "Your card was declined. (card_declined)"
    [post] = outbox_rows(store)
    assert (post.operation, post.alert_id, post.dedupe_key) == (
        "post",
        alert.id,
        f"alert:{alert.id}:post",
    )
    assert "Acme Inc" in post.payload["text"]


def test_decline_reason_falls_back_to_the_invoice_error(store, settings):
    with session_scope(store) as session:
        add_invoice(
            session,
            last_error_message="Authentication required",
            last_error_code="authentication_required",
        )
    react(store, settings, event("invoice.payment_action_required", INVOICE))
    [alert] = alerts(store)
    assert alert.kind == "action_required"
    assert alert.facts["decline_reason"] == "Authentication required (authentication_required)"


def test_second_attempt_updates_the_alert_and_replies_in_its_thread(store, settings):
    failed_invoice(store, attempt=1)
    react(store, settings, event("invoice.payment_failed", INVOICE))
    failed_invoice(store, attempt=2)
    react(store, settings, event("invoice.payment_failed", INVOICE))
    [alert] = alerts(store)
    assert alert.facts["attempt"] == 2 and alert.revision == 1
    operations = [(m.operation, m.dedupe_key) for m in outbox_rows(store)]
    assert operations == [
        ("post", f"alert:{alert.id}:post"),
        ("update", f"alert:{alert.id}:update:1"),
        ("reply", f"alert:{alert.id}:reply:1"),
    ]
    assert "Attempt 2 failed too" in outbox_rows(store)[2].payload["text"]


def test_duplicate_and_stale_events_never_make_a_second_alert(store, settings):
    failed_invoice(store, attempt=2)
    first = event("invoice.payment_failed", INVOICE)
    react(store, settings, first)
    react(store, settings, first)  # the same event again (a replayed delivery)
    react(
        store,
        settings,
        event("invoice.payment_failed", INVOICE, created=T0 - timedelta(days=3)),
        applied_change=False,
    )  # an older attempt's event, delivered late: the store has moved on
    assert len(alerts(store)) == 1
    assert [m.operation for m in outbox_rows(store)] == ["post"]


def test_history_never_alerts(store, settings):
    failed_invoice(store)
    for source in ("replay", "backfill", "reconcile"):
        react(store, settings, event("invoice.payment_failed", INVOICE), source=source)
    assert alerts(store) == [] and outbox_rows(store) == []


def test_recovery_updates_the_original_alert_in_place(store, settings):
    failed_invoice(store)
    react(store, settings, event("invoice.payment_failed", INVOICE))
    with session_scope(store) as session:
        add_invoice(
            session,
            status="paid",
            amount_remaining=0,
            amount_paid=4900,
            paid_at=T0 + timedelta(hours=5),
        )
    paid = event("invoice.paid", INVOICE)
    react(store, settings, paid)
    react(store, settings, paid)
    [alert] = alerts(store)
    assert alert.state == "recovered" and alert.recovered_at == T0 + timedelta(hours=5)
    update, reply = outbox_rows(store)[1:]
    assert update.operation == "update" and copy.RECOVERED_TITLE in update.payload["text"]
    assert reply.operation == "reply" and "Recovered" in reply.payload["text"]


def test_paid_invoice_without_a_failure_alert_posts_nothing(store, settings):
    with session_scope(store) as session:
        add_invoice(session, status="paid")
    react(store, settings, event("invoice.paid", INVOICE))
    assert alerts(store) == []


def test_uncollectible_develops_the_payment_incident(store, settings):
    failed_invoice(store, attempt=4)
    react(store, settings, event("invoice.payment_failed", INVOICE))
    with session_scope(store) as session:
        add_invoice(session, status="uncollectible", attempt_count=4)
    react(store, settings, event("invoice.marked_uncollectible", INVOICE))
    [alert] = alerts(store)
    assert alert.kind == "uncollectible"
    assert "uncollectible" in outbox_rows(store)[-1].payload["text"]


def test_routing_per_kind_and_minimum_amounts(store):
    settings = make_settings(
        slack_channel_payment_failed="C0PAYMENTS",
        slack_channel_refund="#refunds",
        slack_min_amount_refund=2000,
    )
    failed_invoice(store)
    react(store, settings, event("invoice.payment_failed", INVOICE))
    with session_scope(store) as session:
        add_charge(session, amount=4900, amount_refunded=1500, refunded=False)
        add_refund(session, "re_small", amount=1500)
    react(
        store,
        settings,
        event(
            "charge.refunded",
            {"id": "ch_acme", "object": "charge"},
            previous={"amount_refunded": 0},
        ),
    )
    assert [(a.kind, a.channel) for a in alerts(store)] == [("payment_failed", "C0PAYMENTS")]
    with session_scope(store) as session:
        add_charge(session, amount=4900, amount_refunded=4900, refunded=True)
        add_refund(
            session, "re_big", amount=3400, reason="duplicate", created=T0 + timedelta(hours=1)
        )
    react(
        store,
        settings,
        event(
            "charge.refunded",
            {"id": "ch_acme", "object": "charge"},
            previous={"amount_refunded": 1500},
        ),
    )
    refund = alerts(store)[-1]
    assert (refund.kind, refund.channel, refund.facts["amount"]) == ("refund", "#refunds", 3400)
    assert refund.facts["refund_reason"] == "duplicate"


def test_cancellation_scheduled_undone_then_ended_is_one_story(store, settings):
    period_end = T0 + timedelta(days=20)
    with session_scope(store) as session:
        add_subscription(
            session,
            cancel_at_period_end=True,
            cancel_at=period_end,
            cancellation_feedback="too_expensive",
        )
    react(
        store,
        settings,
        event(
            "customer.subscription.updated",
            SUB,
            previous={"cancel_at_period_end": False, "cancel_at": None},
        ),
    )
    [alert] = alerts(store)
    assert alert.kind == "cancel_scheduled" and alert.facts["mrr"] == 4900
    with session_scope(store) as session:
        add_subscription(session, cancel_at_period_end=False, cancel_at=None)
    react(
        store,
        settings,
        event(
            "customer.subscription.updated",
            SUB,
            previous={"cancel_at_period_end": True, "cancel_at": unix(period_end)},
        ),
    )
    [alert] = alerts(store)
    assert alert.kind == "cancel_undone"
    assert "undid the scheduled cancellation" in outbox_rows(store)[-1].payload["text"]


def test_subscription_deleted_after_scheduling_updates_the_scheduled_alert(store, settings):
    with session_scope(store) as session:
        add_subscription(session, cancel_at_period_end=True, cancel_at=T0)
    react(
        store,
        settings,
        event("customer.subscription.updated", SUB, previous={"cancel_at_period_end": False}),
    )
    with session_scope(store) as session:
        add_subscription(session, status="canceled", ended_at=T0, canceled_at=T0)
    deleted = event("customer.subscription.deleted", SUB)
    react(store, settings, deleted)
    react(store, settings, deleted)
    [alert] = alerts(store)
    assert alert.kind == "canceled" and alert.facts["mrr"] == 4900  # MRR lost, not today's zero
    assert [m.operation for m in outbox_rows(store)] == ["post", "update", "reply"]


def test_immediate_cancellation_posts_churn(store, settings):
    with session_scope(store) as session:
        add_subscription(
            session, status="canceled", ended_at=T0, cancellation_reason="cancellation_requested"
        )
    react(store, settings, event("customer.subscription.deleted", SUB))
    [alert] = alerts(store)
    assert alert.kind == "canceled" and alert.incident_key == "cancellation:sub_acme:ended"


def old_items(*prices: tuple[str, int, str]) -> dict:
    """`previous_attributes.items` as Stripe sends it: the whole list as it was."""
    data = [
        {
            "id": f"si_{n}",
            "quantity": 1,
            "price": {
                "id": f"price_{name.lower()}",
                "nickname": name,
                "unit_amount": amount,
                "recurring": {"interval": interval},
            },
        }
        for n, (name, amount, interval) in enumerate(prices)
    ]
    return {"items": {"object": "list", "data": data}}


@pytest.mark.parametrize(
    ("previous", "now", "kind", "old_mrr", "old_plan"),
    [
        (old_items(("Basic", 1900, "month")), 4900, "upgrade", 1900, "Basic (monthly)"),
        (old_items(("Max", 120000, "year")), 14900, "upgrade", 10000, "Max (yearly)"),
        (old_items(("Max", 120000, "year")), 4900, "downgrade", 10000, "Max (yearly)"),
        ({"quantity": 3}, 4900, "downgrade", 14700, "Pro (monthly) × 3"),
        (
            {"plan": {"id": "plan_old", "nickname": "Legacy", "amount": 4900, "interval": "month"}},
            4900,
            "plan_changed",
            4900,
            "Legacy (monthly)",
        ),
    ],
)
def test_plan_changes_from_previous_attributes(
    store, settings, previous, now, kind, old_mrr, old_plan
):
    with session_scope(store) as session:
        add_subscription(session, items=[{"plan_name": "Pro", "unit_amount": now}])
    react(store, settings, event("customer.subscription.updated", SUB, previous=previous))
    [alert] = alerts(store)
    assert (alert.kind, alert.facts["old_mrr"], alert.facts["mrr"]) == (kind, old_mrr, now)
    assert (alert.facts["old_plan"], alert.facts["plan"]) == (old_plan, "Pro (monthly)")
    assert alert.channel == "#billing-alerts"


def test_a_change_that_moves_nothing_is_quiet(store, settings):
    react(
        store,
        settings,
        event("customer.subscription.updated", SUB, previous={"metadata": {"x": "1"}}),
    )
    react(store, settings, event("customer.subscription.updated", SUB, previous={"quantity": 1}))
    assert alerts(store) == []


def test_trial_conversion_and_trial_ending(store, settings):
    trial_end = T0 + timedelta(days=3)
    with session_scope(store) as session:
        add_subscription(session, status="trialing", trial_end=trial_end)
    react(store, settings, event("customer.subscription.trial_will_end", SUB))
    react(store, settings, event("customer.subscription.trial_will_end", SUB))
    with session_scope(store) as session:
        add_subscription(session, status="active", trial_end=trial_end)
    react(
        store,
        settings,
        event("customer.subscription.updated", SUB, previous={"status": "trialing"}),
    )
    assert [(a.kind, a.facts["mrr"]) for a in alerts(store)] == [
        ("trial_ending", 4900),
        ("trial_converted", 4900),
    ]
    assert alerts(store)[0].incident_key == f"trial_ending:sub_acme:{unix(trial_end)}"


def test_no_channel_configured_with_slack_on_posts_nothing(store, slack_api):
    settings = make_settings(slack_api, slack_alert_channel=None)
    failed_invoice(store)
    react(store, settings, event("invoice.payment_failed", INVOICE))
    assert alerts(store) == []


def test_outbox_dedupe_key_is_unique(store, settings):
    failed_invoice(store)
    react(store, settings, event("invoice.payment_failed", INVOICE))
    assert {m.status for m in outbox_rows(store)} == {OutboxStatus.PENDING}

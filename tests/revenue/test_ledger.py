"""Movements per customer, at event time, recorded once."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

from sqlmodel import Session, func, select

from handlers.revenue.ledger import (
    Recorded,
    plan_movements,
    record_customer_mrr,
    record_mrr_movements,
)
from storage.db import session_scope
from storage.models.ledger import CustomerMrr, MovementKind, MrrMovement, from_ledger_units
from storage.money import format_money
from storage.mrr import MrrPolicy
from storage.revenue import customer_mrr_history
from tests.revenue.factories import (
    T0,
    applied,
    item,
    put_subscription,
    set_quantity,
    update_subscription,
)

DAY = timedelta(days=1)


def lines(session: Session, customer_id: str = "cus_1") -> list[tuple[str, int]]:
    rows = session.exec(
        select(MrrMovement).where(MrrMovement.customer_id == customer_id).order_by(MrrMovement.id)
    ).all()
    return [(row.kind, int(from_ledger_units(row.amount))) for row in rows]


def react(
    session: Session, event_id: str, at, sub_id: str, customer_id: str | None = "cus_1", **kw
) -> None:
    record_mrr_movements(
        session, applied(event_id, at, ("subscription", sub_id, customer_id)), **kw
    )


def test_seats_expansion_contraction_then_churn(engine):
    with session_scope(engine) as session:
        put_subscription(session, "sub_seats", customer_id="cus_1", items=[item(3_000, quantity=5)])
        put_subscription(session, "sub_small", customer_id="cus_1", items=[item(2_000)])
        react(session, "evt_1", T0, "sub_seats")
    with session_scope(engine) as session:
        set_quantity(session, "sub_seats", 8)
        react(session, "evt_2", T0 + DAY, "sub_seats")
    with session_scope(engine) as session:
        update_subscription(session, "sub_small", status="canceled")
        react(session, "evt_3", T0 + 2 * DAY, "sub_small")
    with session_scope(engine) as session:
        update_subscription(session, "sub_seats", status="canceled")
        react(session, "evt_4", T0 + 3 * DAY, "sub_seats")
    with session_scope(engine) as session:
        assert lines(session) == [
            ("new", 17_000),
            ("expansion", 9_000),
            ("contraction", -2_000),
            ("churn", -24_000),
        ]
        times = session.exec(select(MrrMovement.occurred_at).order_by(MrrMovement.id)).all()
        assert times == [T0, T0 + DAY, T0 + 2 * DAY, T0 + 3 * DAY]
        assert session.get(CustomerMrr, ("cus_1", "usd")).mrr == 0


def test_the_same_event_twice_changes_nothing(engine):
    with session_scope(engine) as session:
        put_subscription(session, "sub_1", customer_id="cus_1", items=[item(4_900)])
        react(session, "evt_1", T0, "sub_1")
        set_quantity(session, "sub_1", 2)
        react(session, "evt_2", T0 + DAY, "sub_1")
    for _ in range(2):
        with session_scope(engine) as session:
            react(session, "evt_1", T0, "sub_1")
            react(session, "evt_2", T0 + DAY, "sub_1")
            record_customer_mrr(session, customer_id="cus_1", at=T0 + 5 * DAY, event_id="evt_2")
    with session_scope(engine) as session:
        assert lines(session) == [("new", 4_900), ("expansion", 4_900)]
        assert session.exec(select(func.count()).select_from(MrrMovement)).one() == 2


def test_unapplied_changes_and_unknown_subscriptions_are_ignored(engine):
    with session_scope(engine) as session:
        put_subscription(session, "sub_1", customer_id="cus_1", items=[item(4_900)])
        event = applied("evt_old", T0, ("subscription", "sub_1", "cus_1"))
        stale = replace(event, changes=[replace(change, applied=False) for change in event.changes])
        record_mrr_movements(session, stale)
        react(session, "evt_x", T0, "sub_missing", customer_id=None)
        assert lines(session) == []
        # A change that names no customer is traced through its subscription row.
        react(session, "evt_1", T0, "sub_1", customer_id=None)
        assert lines(session) == [("new", 4_900)]


def test_trial_converting_is_new_even_when_past_due(engine):
    with session_scope(engine) as session:
        put_subscription(
            session, "sub_1", customer_id="cus_1", items=[item(4_900)], status="trialing"
        )
        react(session, "evt_1", T0, "sub_1")
        assert lines(session) == []
        update_subscription(session, "sub_1", status="past_due")
        react(session, "evt_2", T0 + DAY, "sub_1")
        assert lines(session) == [("new", 4_900)]


def test_unpaid_is_churn_and_coming_back_is_reactivation(engine):
    with session_scope(engine) as session:
        put_subscription(session, "sub_1", customer_id="cus_1", items=[item(4_900)])
        react(session, "evt_1", T0, "sub_1")
        update_subscription(session, "sub_1", status="unpaid")
        react(session, "evt_2", T0 + DAY, "sub_1")
        update_subscription(session, "sub_1", status="active")
        react(session, "evt_3", T0 + 2 * DAY, "sub_1")
        assert lines(session) == [("new", 4_900), ("churn", -4_900), ("reactivation", 4_900)]


def test_pause_is_its_own_line_not_churn(engine):
    with session_scope(engine) as session:
        put_subscription(session, "sub_1", customer_id="cus_1", items=[item(4_900)])
        react(session, "evt_1", T0, "sub_1")
        update_subscription(session, "sub_1", status="paused")
        react(session, "evt_2", T0 + DAY, "sub_1")
        set_quantity(session, "sub_1", 2)
        update_subscription(session, "sub_1", status="active")
        react(session, "evt_3", T0 + 2 * DAY, "sub_1")
        assert lines(session) == [
            ("new", 4_900),
            ("paused", -4_900),
            ("resumed", 4_900),
            ("expansion", 4_900),
        ]
        # A trial that pauses (no payment method) never counted: when it resumes, it is new.
        put_subscription(
            session, "sub_2", customer_id="cus_2", items=[item(1_000)], status="trialing"
        )
        react(session, "evt_4", T0, "sub_2", customer_id="cus_2")
        update_subscription(session, "sub_2", status="paused")
        react(session, "evt_5", T0 + DAY, "sub_2", customer_id="cus_2")
        update_subscription(session, "sub_2", status="active")
        react(session, "evt_6", T0 + 2 * DAY, "sub_2", customer_id="cus_2")
        assert lines(session, "cus_2") == [("new", 1_000)]


def test_cancellation_counts_when_requested_or_at_period_end(engine):
    for churn_at, customer in (("request", "cus_r"), ("period_end", "cus_p")):
        policy = MrrPolicy(churn_at=churn_at)
        with session_scope(engine) as session:
            put_subscription(session, f"sub_{customer}", customer_id=customer, items=[item(4_900)])
            react(session, f"evt_{customer}_1", T0, f"sub_{customer}", customer, policy=policy)
            update_subscription(session, f"sub_{customer}", cancel_at_period_end=True)
            react(
                session, f"evt_{customer}_2", T0 + DAY, f"sub_{customer}", customer, policy=policy
            )
            update_subscription(session, f"sub_{customer}", status="canceled")
            react(
                session,
                f"evt_{customer}_3",
                T0 + 30 * DAY,
                f"sub_{customer}",
                customer,
                policy=policy,
            )
    with session_scope(engine) as session:
        churn_times = dict(
            session.exec(
                select(MrrMovement.customer_id, MrrMovement.occurred_at).where(
                    MrrMovement.kind == "churn"
                )
            ).all()
        )
        assert churn_times == {"cus_r": T0 + DAY, "cus_p": T0 + 30 * DAY}


def test_customer_history_says_since_when_and_what_it_was(engine):
    with session_scope(engine) as session:
        put_subscription(session, "sub_1", customer_id="cus_1", items=[item(4_900)])
        react(session, "evt_1", T0, "sub_1")
        set_quantity(session, "sub_1", 2)
        react(session, "evt_2", T0 + 2 * DAY, "sub_1")
        history = customer_mrr_history(session, customer_id="cus_1")
        latest = history[0]
        text = f"MRR {format_money(latest.mrr, latest.currency)} since {latest.since:%b %-d}, was {format_money(latest.previous, latest.currency)}"
        assert text == "MRR $98.00 since Mar 3, was $49.00"
        assert [entry.kind for entry in history] == ["expansion", "new"]
        assert customer_mrr_history(session, customer_id="cus_nobody") == []


def test_ledger_lines_add_up_to_each_customer_mrr(engine):
    with session_scope(engine) as session:
        put_subscription(
            session, "sub_w", customer_id="cus_1", items=[item(1_000, interval="week")]
        )
        put_subscription(
            session, "sub_d", customer_id="cus_1", items=[item(100, interval="day", quantity=3)]
        )
        for n, quantity in enumerate([2, 5, 1, 7]):
            set_quantity(session, "sub_w", quantity)
            react(session, f"evt_{n}", T0 + n * DAY, "sub_w")
        total = session.exec(select(func.sum(MrrMovement.amount))).one()
        assert total == session.get(CustomerMrr, ("cus_1", "usd")).mrr
        assert from_ledger_units(total).quantize(Decimal("0.000001")) == Decimal("39458.333333")


def test_plan_movements_across_currencies_and_paused_cancellations():
    # A customer moving from USD to EUR in one event is contraction and expansion, not churn.
    planned, _ = plan_movements({"usd": Recorded(100)}, {"eur": (90, 0)}, ever_paid=True)
    assert [(line.currency, line.kind, line.amount) for line in planned] == [
        ("eur", MovementKind.EXPANSION, 90),
        ("usd", MovementKind.CONTRACTION, -100),
    ]
    # A paused subscription cancelled while paused moves no MRR.
    planned, after = plan_movements({"usd": Recorded(0, 50, 50)}, {"usd": (0, 0)}, ever_paid=True)
    assert planned == [] and after["usd"] == Recorded(0, 0, 0)
    # Cancelling the active one of an active and a paused subscription is contraction.
    planned, _ = plan_movements({"usd": Recorded(100, 50, 50)}, {"usd": (0, 50)}, ever_paid=True)
    assert [(line.kind, line.amount) for line in planned] == [(MovementKind.CONTRACTION, -100)]

"""CustomerSummary from a real store: status, MRR, lifetime value, open invoices, freshness."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from storage.customer_status import CustomerStatus
from storage.customer_summary import lookup_customers
from storage.db import read_scope, session_scope
from storage.money import Money
from tests import store_rows as rows
from tests.store_rows import T0


def summary(engine, customer_id="cus_x", now=T0):
    with read_scope(engine) as session:
        answer = lookup_customers(session=session, text=customer_id, now=now)
    assert len(answer.matches) == 1
    return answer.matches[0]


def make_customer(session, **fields):
    return rows.customer(session, id=fields.pop("id", "cus_x"), **fields)


@pytest.mark.parametrize(
    ("subscriptions", "invoice", "expected"),
    [
        ([], None, CustomerStatus.NONE),
        (["active"], None, CustomerStatus.CURRENT),
        (["active"], {"attempt_count": 0}, CustomerStatus.CURRENT),  # open, not yet attempted
        (["active"], {"attempt_count": 1}, CustomerStatus.OVERDUE),
        (
            ["active"],
            {"attempt_count": 0, "due_date": T0 - timedelta(days=1)},
            CustomerStatus.OVERDUE,
        ),
        (
            ["active"],
            {"attempt_count": 0, "due_date": T0 + timedelta(days=1)},
            CustomerStatus.CURRENT,
        ),
        (["active"], {"status": "uncollectible"}, CustomerStatus.OVERDUE),
        (["active"], {"attempt_count": 3, "amount_remaining": 0}, CustomerStatus.CURRENT),
        (["active", "past_due"], None, CustomerStatus.OVERDUE),
        (["trialing"], None, CustomerStatus.TRIALING),
        (["paused", "canceled"], None, CustomerStatus.PAUSED),
        (["canceled", "incomplete_expired"], None, CustomerStatus.CANCELLED),
        (["canceled"], {"attempt_count": 2}, CustomerStatus.OVERDUE),
    ],
)
def test_status_rules(engine, subscriptions, invoice, expected):
    with session_scope(engine) as session:
        make_customer(session)
        for status in subscriptions:
            rows.subscription(session, customer_id="cus_x", status=status)
        if invoice is not None:
            rows.invoice(session, customer_id="cus_x", **{"status": "open", **invoice})
    assert summary(engine).status is expected


def test_a_deleted_customer_is_cancelled(engine):
    with session_scope(engine) as session:
        make_customer(session, deleted=True)
        rows.subscription(session, customer_id="cus_x", status="active")
    found = summary(engine)
    assert (found.status, found.deleted) == (CustomerStatus.CANCELLED, True)


def test_mrr_per_subscription_and_customer_rounded_once(engine):
    with session_scope(engine) as session:
        make_customer(session, currency="usd")
        rows.subscription(
            session,
            id="sub_year",
            customer_id="cus_x",
            created=T0 - timedelta(days=9),
            items=[{"unit_amount": 1001, "interval": "year", "quantity": 1, "plan_name": "Annual"}],
        )
        rows.subscription(session, id="sub_seats", customer_id="cus_x", created=T0 - timedelta(days=5), items=[
            {"unit_amount": 1001, "interval": "year", "quantity": 1, "plan_name": "Annual"},
            {"unit_amount": 500, "interval": "month", "quantity": 3, "plan_name": "Seats"},
            {"unit_amount": 7, "interval": "month", "usage_type": "metered", "plan_name": "API"},
        ])  # fmt: skip
        rows.subscription(session, id="sub_trial", customer_id="cus_x", status="trialing",
                          trial_end=T0 + timedelta(days=7), items=[{"unit_amount": 99900}])  # fmt: skip
    found = summary(engine)
    by_id = {sub.id: sub for sub in found.subscriptions}
    # 1001 / 12 = 83.4166..: each subscription shows 83, but the customer total is rounded once.
    assert by_id["sub_year"].mrr == Money(83, "usd")
    assert by_id["sub_seats"].mrr == Money(1583, "usd")
    assert by_id["sub_seats"].mrr_exact == Decimal(1001) / 12 + 1500
    assert (by_id["sub_seats"].plan, by_id["sub_seats"].quantity) == ("Annual + Seats + API", 4)
    assert by_id["sub_trial"].mrr == Money(0, "usd")
    assert by_id["sub_trial"].trial_end == T0 + timedelta(days=7)
    assert found.mrr == Money(round(Decimal(2002) / 12 + 1500), "usd") == Money(1667, "usd")
    assert found.status is CustomerStatus.CURRENT


def test_several_currencies_are_listed_never_converted(engine):
    with session_scope(engine) as session:
        make_customer(session, currency="eur")
        rows.subscription(
            session, customer_id="cus_x", currency="usd", items=[{"unit_amount": 2000}]
        )
        rows.subscription(
            session,
            customer_id="cus_x",
            currency="jpy",
            items=[{"unit_amount": 5000, "quantity": 2}],
        )
        rows.charge(session, customer_id="cus_x", amount=3000, currency="usd")
        rows.charge(session, customer_id="cus_x", amount=4000, currency="eur")
    found = summary(engine)
    assert found.currency == "eur"  # the customer's own currency, as it has payments in it
    assert found.mrr == Money(0, "eur")
    assert set(found.mrr_by_currency) == {Money(2000, "usd"), Money(10000, "jpy")}
    assert found.lifetime_value == Money(4000, "eur")
    assert found.lifetime_value_by_currency == (Money(4000, "eur"), Money(3000, "usd"))


def test_main_currency_follows_the_newest_subscription_when_the_customer_has_none(engine):
    with session_scope(engine) as session:
        make_customer(session, currency=None)
        rows.subscription(
            session, customer_id="cus_x", currency="gbp", created=T0 - timedelta(days=300)
        )
        rows.subscription(session, customer_id="cus_x", currency="jpy", created=T0 - timedelta(days=3),
                          items=[{"unit_amount": 5000}])  # fmt: skip
    found = summary(engine)
    assert found.mrr == Money(5000, "jpy")
    assert found.mrr_by_currency == (Money(5000, "jpy"), Money(1000, "gbp"))


def test_lifetime_value_counts_each_payment_once_minus_refunds(engine):
    with session_scope(engine) as session:
        make_customer(session, currency="usd")
        # An invoice paid by a stored charge (linked three different ways): counted once, via the charge.
        rows.invoice(
            session, id="in_a", customer_id="cus_x", status="paid", amount=1000, charge_id="ch_a"
        )
        rows.charge(
            session, id="ch_a", customer_id="cus_x", amount=1000, at=T0 - timedelta(days=30)
        )
        rows.invoice(session, id="in_b", customer_id="cus_x", status="paid", amount=2000)
        rows.charge(
            session,
            id="ch_b",
            customer_id="cus_x",
            amount=2000,
            invoice_id="in_b",
            at=T0 - timedelta(days=20),
        )
        rows.invoice(session, id="in_c", customer_id="cus_x", status="paid", amount=4000)
        rows.invoice_payment(session, invoice_id="in_c", payment_intent_id="pi_c", amount=4000)
        rows.charge(
            session,
            id="ch_c",
            customer_id="cus_x",
            amount=4000,
            payment_intent_id="pi_c",
            at=T0 - timedelta(days=10),
        )
        # A paid invoice whose charge never reached the store: counted from the invoice.
        rows.invoice(
            session,
            id="in_d",
            customer_id="cus_x",
            status="paid",
            amount=8000,
            at=T0 - timedelta(days=5),
        )
        # A one-off charge with no invoice, partly refunded (charge total and refund rows agree).
        rows.charge(
            session,
            id="ch_e",
            customer_id="cus_x",
            amount=16000,
            amount_refunded=6000,
            at=T0 - timedelta(days=2),
        )
        rows.refund(session, charge_id="ch_e", amount=6000)
        # A refund row that arrived before the charge's own refunded total was updated.
        rows.charge(session, id="ch_f", customer_id="cus_x", amount=500, at=T0 - timedelta(days=40))
        rows.refund(session, charge_id="ch_f", amount=200)
        rows.refund(session, charge_id="ch_f", amount=999, status="failed")
        # Failed and uncaptured charges are not money received.
        rows.charge(session, customer_id="cus_x", amount=32000, status="failed")
        rows.charge(
            session,
            customer_id="cus_x",
            amount=32000,
            status="succeeded",
            amount_captured=0,
            captured=False,
        )
    found = summary(engine)
    assert found.lifetime_value == Money(
        1000 + 2000 + 4000 + 8000 + (16000 - 6000) + (500 - 200), "usd"
    )
    assert found.last_payment is not None
    assert (found.last_payment.id, found.last_payment.amount) == ("ch_e", 16000)


def test_zero_decimal_amounts_stay_whole(engine):
    with session_scope(engine) as session:
        make_customer(session, currency="jpy")
        rows.subscription(session, customer_id="cus_x", currency="jpy",
                          items=[{"unit_amount": 1000, "interval": "week"}])  # fmt: skip
        rows.charge(session, customer_id="cus_x", amount=5000, currency="jpy")
        rows.invoice(
            session,
            customer_id="cus_x",
            status="open",
            amount=4333,
            currency="jpy",
            attempt_count=1,
        )
    found = summary(engine)
    assert found.mrr == Money(4333, "jpy")  # 1000 × 52 / 12 = 4333.33
    assert found.lifetime_value == Money(5000, "jpy")
    assert found.open_invoices[0].amount_remaining == Money(4333, "jpy")


def test_open_invoices_with_attempts_and_next_attempt(engine):
    with session_scope(engine) as session:
        make_customer(session)
        rows.subscription(session, id="sub_1", customer_id="cus_x", status="past_due")
        rows.invoice(session, id="in_failed", customer_id="cus_x", subscription_id="sub_1", attempt_count=2,
                     next_payment_attempt=T0 + timedelta(days=3), amount=1500)  # fmt: skip
        rows.invoice(session, id="in_fresh", customer_id="cus_x", attempt_count=0,
                     next_payment_attempt=T0 + timedelta(hours=1), amount=700)  # fmt: skip
        rows.invoice(session, id="in_sent", customer_id="cus_x", collection_method="send_invoice",
                     due_date=T0 - timedelta(days=2), amount=900)  # fmt: skip
        rows.invoice(session, id="in_paid", customer_id="cus_x", status="paid")
        rows.invoice(session, id="in_void", customer_id="cus_x", status="void")
        rows.invoice(session, id="in_draft", customer_id="cus_x", status="draft")
    found = summary(engine)
    assert found.status is CustomerStatus.OVERDUE
    invoices = {invoice.id: invoice for invoice in found.open_invoices}
    assert set(invoices) == {"in_failed", "in_fresh", "in_sent"}
    assert (invoices["in_failed"].attempt_count, invoices["in_failed"].overdue) == (2, True)
    assert invoices["in_fresh"].overdue is False
    assert invoices["in_sent"].overdue is True
    assert found.next_payment_attempt == T0 + timedelta(hours=1)


def test_scheduled_cancellation_is_shown_beside_an_active_subscription(engine):
    end = T0 + timedelta(days=12)
    with session_scope(engine) as session:
        make_customer(session)
        rows.subscription(
            session, customer_id="cus_x", cancel_at_period_end=True, current_period_end=end
        )
    found = summary(engine)
    assert found.status is CustomerStatus.CURRENT
    assert (found.subscriptions[0].cancel_at_period_end, found.subscriptions[0].cancel_at) == (
        True,
        end,
    )


def test_as_of_is_the_freshest_of_the_customers_rows(engine):
    with session_scope(engine) as session:
        make_customer(session, at=T0 - timedelta(days=30))
        make_customer(session, id="cus_other", email="o@x.test", at=T0 + timedelta(days=99))
        rows.subscription(session, customer_id="cus_x", at=T0 - timedelta(days=20))
        rows.invoice(session, customer_id="cus_other", at=T0 + timedelta(days=50))
    assert summary(engine).as_of == T0 - timedelta(days=20)
    with session_scope(engine) as session:
        rows.invoice(session, customer_id="cus_x", status="void", at=T0 - timedelta(days=3))
    assert summary(engine).as_of == T0 - timedelta(days=3)
    with session_scope(engine) as session:
        rows.charge(session, customer_id="cus_x", status="failed", at=T0 - timedelta(days=1))
    assert summary(engine).as_of == T0 - timedelta(days=1)

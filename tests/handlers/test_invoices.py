from __future__ import annotations

import pytest

from storage.billing import invoices_for_customer
from storage.db import read_scope
from storage.models import Charge, Invoice, InvoicePayment
from tests import factories as f
from tests.handlers.support import at, fetch


@pytest.mark.parametrize("api_version", f.API_VERSIONS)
def test_subscription_invoice_in_either_shape(engine, apply, api_version):
    inv = f.invoice(
        api_version=api_version, customer="cus_a", subscription="sub_a", status="open", amount_due=4900,
        attempt_count=2, next_payment_attempt=f.T0 + 3 * f.DAY, due_date=f.T0 + 7 * f.DAY, number="A-1",
        last_finalization_error={"type": "card_error", "code": "card_declined", "message": "Declined"},
    )  # fmt: skip
    [change] = apply(f.event("invoice.payment_failed", inv, created=f.T0, api_version=api_version))
    row = fetch(engine, Invoice, inv["id"])
    assert (row.customer_id, row.subscription_id, row.status, row.number) == (
        "cus_a",
        "sub_a",
        "open",
        "A-1",
    )
    assert (row.amount_due, row.amount_paid, row.amount_remaining, row.total) == (
        4900,
        0,
        4900,
        4900,
    )
    assert (row.attempt_count, row.attempted) == (2, True)
    assert (row.next_payment_attempt, row.due_date) == (at(f.T0 + 3 * f.DAY), at(f.T0 + 7 * f.DAY))
    assert row.hosted_invoice_url == f"https://invoice.stripe.com/i/{inv['id']}"
    assert (row.last_error_code, row.last_error_message) == ("card_declined", "Declined")
    assert (row.payment_intent_id, row.charge_id) == (None, None)
    assert (change.object_type, change.customer_id, change.applied) == ("invoice", "cus_a", True)


@pytest.mark.parametrize("api_version", f.API_VERSIONS)
def test_one_off_invoice_has_no_subscription(engine, apply, api_version):
    inv = f.invoice(api_version=api_version, customer="cus_b", billing_reason="manual")
    apply(f.event("invoice.finalized", inv, created=f.T0, api_version=api_version))
    row = fetch(engine, Invoice, inv["id"])
    assert (row.subscription_id, row.billing_reason) == (None, "manual")


@pytest.mark.parametrize(("currency", "amount"), [("jpy", 5000), ("kwd", 1500), ("usd", 1999)])
def test_amounts_are_stored_as_integer_minor_units(engine, apply, currency, amount):
    inv = f.invoice(customer="cus_c", currency=currency.upper(), amount_due=amount)
    apply(f.event("invoice.created", inv, created=f.T0, api_version=f.NEW))
    row = fetch(engine, Invoice, inv["id"])
    assert (row.currency, row.amount_due, type(row.amount_due)) == (currency, amount, int)


def test_fractional_amount_is_refused_with_a_clear_error(engine, apply):
    from handlers.stripe.convert import ConversionError

    inv = f.invoice(customer="cus_c", amount_due=19.99)
    with pytest.raises(ConversionError, match="invoice.amount_due"):
        apply(f.event("invoice.created", inv, created=f.T0, api_version=f.NEW))
    with read_scope(engine) as session:
        assert session.get(Invoice, inv["id"]) is None


@pytest.mark.parametrize("order", ["paid_first", "open_first"])
def test_paid_wins_a_same_second_tie_with_open(engine, apply, order):
    open_ = f.invoice(customer="cus_d", status="open", attempt_count=1)
    paid = dict(open_, status="paid", amount_paid=2000, amount_remaining=0)
    events = [f.event("invoice.paid", paid, created=f.T0, api_version=f.NEW),
              f.event("invoice.updated", open_, created=f.T0, api_version=f.NEW)]  # fmt: skip
    apply(*(events if order == "paid_first" else reversed(events)))
    row = fetch(engine, Invoice, open_["id"])
    assert (row.status, row.amount_paid) == ("paid", 2000)


def test_higher_attempt_count_wins_a_same_second_tie(engine, apply):
    first = f.invoice(customer="cus_e", attempt_count=1)
    second = dict(first, attempt_count=2)
    apply(f.event("invoice.payment_failed", second, created=f.T0, api_version=f.NEW),
          f.event("invoice.updated", first, created=f.T0, api_version=f.NEW))  # fmt: skip
    assert fetch(engine, Invoice, first["id"]).attempt_count == 2


def test_older_open_never_overwrites_paid(engine, apply):
    open_ = f.invoice(customer="cus_f", status="open")
    paid = dict(open_, status="paid", amount_paid=2000, amount_remaining=0)
    apply(f.event("invoice.paid", paid, created=f.T0 + 10, api_version=f.OLD),
          f.event("invoice.finalized", open_, created=f.T0, api_version=f.OLD))  # fmt: skip
    assert fetch(engine, Invoice, open_["id"]).status == "paid"


@pytest.mark.parametrize("stub", [False, True])
def test_deleted_invoice_is_marked_deleted(engine, apply, stub):
    draft = f.invoice(customer="cus_g", status="draft")
    gone = {"id": draft["id"], "object": "invoice", "deleted": True} if stub else draft
    apply(f.event("invoice.created", draft, created=f.T0, api_version=f.NEW),
          f.event("invoice.deleted", gone, created=f.T0, api_version=f.NEW),
          f.event("invoice.updated", draft, created=f.T0, api_version=f.NEW))  # fmt: skip
    row = fetch(engine, Invoice, draft["id"])
    assert (row.status, row.customer_id, row.currency) == ("deleted", "cus_g", "usd")


def test_open_invoices_for_customer(engine, apply):
    invoices = [
        f.invoice(customer="cus_h", status=s, created=f.T0 + n)
        for n, s in enumerate(["open", "paid", "open"])
    ]
    apply(*(f.event("invoice.updated", i, created=f.T0 + 9, api_version=f.NEW) for i in invoices))
    with read_scope(engine) as session:
        found = invoices_for_customer(session=session, customer_id="cus_h", statuses=["open"])
        assert [i.id for i in found] == [invoices[0]["id"], invoices[2]["id"]]


# --- basil: the invoice ↔ charge link through InvoicePayment ----------------------------


def _basil_payment(*, invoice_first: bool, charge_first: bool):
    inv = f.invoice(
        customer="cus_p", subscription="sub_p", status="paid", amount_paid=2000, paid_at=f.T0
    )
    charge = f.charge(customer="cus_p", payment_intent="pi_p" + inv["id"][-6:], created=f.T0)
    payment = f.invoice_payment(
        invoice=inv["id"], payment_intent=charge["payment_intent"], created=f.T0
    )
    events = {
        "invoice": f.event("invoice.paid", inv, created=f.T0 + 1, api_version=f.NEW),
        "charge": f.event("charge.succeeded", charge, created=f.T0, api_version=f.NEW),
        "payment": f.event("invoice_payment.paid", payment, created=f.T0 + 1, api_version=f.NEW),
    }
    order = ["payment"]
    order.insert(0 if charge_first else 1, "charge")
    order.insert(0 if invoice_first else len(order), "invoice")
    return inv, charge, payment, [events[name] for name in order]


@pytest.mark.parametrize("invoice_first", [True, False])
@pytest.mark.parametrize("charge_first", [True, False])
def test_basil_charge_is_linked_to_its_invoice_in_any_order(
    engine, apply, invoice_first, charge_first
):
    inv, charge, payment, events = _basil_payment(
        invoice_first=invoice_first, charge_first=charge_first
    )
    apply(*events)
    assert fetch(engine, Charge, charge["id"]).invoice_id == inv["id"]
    row = fetch(engine, Invoice, inv["id"])
    assert (row.payment_intent_id, row.charge_id) == (charge["payment_intent"], charge["id"])
    stored = fetch(engine, InvoicePayment, payment["id"])
    assert (stored.invoice_id, stored.payment_intent_id, stored.status, stored.amount_paid) == (
        inv["id"], charge["payment_intent"], "paid", 2000,
    )  # fmt: skip


def test_link_survives_a_later_charge_event(engine, apply):
    inv, charge, _, events = _basil_payment(invoice_first=True, charge_first=True)
    apply(*events)
    refunded = dict(charge, amount_refunded=2000, refunded=True)
    apply(f.event("charge.refunded", refunded, created=f.T0 + 50, api_version=f.NEW))
    row = fetch(engine, Charge, charge["id"])
    assert (row.invoice_id, row.amount_refunded) == (inv["id"], 2000)


def test_invoice_payments_expanded_on_the_invoice_link_too(engine, apply):
    charge = f.charge(customer="cus_q", payment_intent="pi_expanded")
    inv = f.invoice(customer="cus_q", status="paid", amount_paid=2000)
    inv["payments"] = {"object": "list", "has_more": False, "data": [
        f.invoice_payment(invoice=inv["id"], payment_intent="pi_expanded", status="canceled"),
        f.invoice_payment(invoice=inv["id"], payment_intent="pi_expanded"),
    ]}  # fmt: skip
    apply(f.event("charge.succeeded", charge, created=f.T0, api_version=f.NEW),
          f.event("invoice.paid", inv, created=f.T0 + 1, api_version=f.NEW))  # fmt: skip
    assert fetch(engine, Invoice, inv["id"]).payment_intent_id == "pi_expanded"
    assert fetch(engine, Charge, charge["id"]).invoice_id == inv["id"]


def test_a_retried_payment_points_the_invoice_at_the_latest_charge(engine, apply):
    inv = f.invoice(customer="cus_r", status="paid", amount_paid=2000)
    declined = f.charge(customer="cus_r", payment_intent="pi_retry", status="failed", created=f.T0)
    accepted = f.charge(customer="cus_r", payment_intent="pi_retry", created=f.T0 + 60)
    payment = f.invoice_payment(invoice=inv["id"], payment_intent="pi_retry", created=f.T0)
    apply(f.event("invoice_payment.paid", payment, created=f.T0 + 61, api_version=f.NEW),
          f.event("invoice.paid", inv, created=f.T0 + 61, api_version=f.NEW),
          f.event("charge.failed", declined, created=f.T0, api_version=f.NEW),
          f.event("charge.succeeded", accepted, created=f.T0 + 60, api_version=f.NEW))  # fmt: skip
    assert fetch(engine, Invoice, inv["id"]).charge_id == accepted["id"]
    assert {fetch(engine, Charge, c["id"]).invoice_id for c in (declined, accepted)} == {inv["id"]}

from __future__ import annotations

import pytest

from storage.billing import charges_for_customer, refunds_for_customer
from storage.db import read_scope
from storage.models import Charge, Refund
from tests import factories as f
from tests.handlers.support import at, fetch


@pytest.mark.parametrize("api_version", f.API_VERSIONS)
def test_failed_charge_keeps_its_decline_reason(engine, apply, api_version):
    charge = f.charge(api_version=api_version, customer="cus_a", status="failed", amount=4900,
                      failure_code="card_declined", failure_message="Your card was declined.")  # fmt: skip
    [change] = apply(f.event("charge.failed", charge, created=f.T0, api_version=api_version))
    row = fetch(engine, Charge, charge["id"])
    assert (row.status, row.paid, row.captured, row.amount, row.amount_captured) == (
        "failed",
        False,
        False,
        4900,
        0,
    )
    assert (row.failure_code, row.failure_message) == ("card_declined", "Your card was declined.")
    assert (change.object_type, change.customer_id) == ("charge", "cus_a")


def test_old_shape_charge_names_its_invoice(engine, apply):
    charge = f.charge(
        api_version=f.OLD, customer="cus_b", invoice="in_old", payment_intent="pi_old"
    )
    apply(f.event("charge.succeeded", charge, created=f.T0, api_version=f.OLD))
    row = fetch(engine, Charge, charge["id"])
    assert (row.invoice_id, row.payment_intent_id, row.paid, row.created) == (
        "in_old",
        "pi_old",
        True,
        at(f.T0),
    )


def test_expandables_as_objects(engine, apply):
    charge = f.charge(
        customer=f.customer(id="cus_obj"),
        payment_intent={"id": "pi_obj", "object": "payment_intent"},
    )
    apply(f.event("charge.succeeded", charge, created=f.T0, api_version=f.NEW))
    row = fetch(engine, Charge, charge["id"])
    assert (row.customer_id, row.payment_intent_id) == ("cus_obj", "pi_obj")


@pytest.mark.parametrize("currency", ["jpy", "kwd"])
def test_zero_and_three_decimal_charges(engine, apply, currency):
    charge = f.charge(customer="cus_z", amount=5130, currency=currency)
    apply(f.event("charge.succeeded", charge, created=f.T0, api_version=f.NEW))
    with read_scope(engine) as session:
        [row] = charges_for_customer(session=session, customer_id="cus_z")
        assert (row.amount, row.currency) == (5130, currency)


@pytest.mark.parametrize("order", ["refund_first", "success_first"])
def test_more_refunded_wins_a_same_second_tie(engine, apply, order):
    charge = f.charge(customer="cus_t", amount=3000)
    refunded = dict(charge, amount_refunded=1000)
    events = [f.event("charge.refunded", refunded, created=f.T0, api_version=f.NEW),
              f.event("charge.succeeded", charge, created=f.T0, api_version=f.NEW)]  # fmt: skip
    apply(*(events if order == "refund_first" else reversed(events)))
    assert fetch(engine, Charge, charge["id"]).amount_refunded == 1000


def test_refund_takes_its_customer_from_the_charge(engine, apply):
    charge = f.charge(customer="cus_r", amount=3000)
    refund = f.refund(charge=charge["id"], amount=1000, reason="duplicate", status="pending")
    done = dict(refund, status="succeeded")
    changes = apply(
        f.event("charge.succeeded", charge, created=f.T0, api_version=f.NEW),
        f.event("refund.updated", done, created=f.T0 + 20, api_version=f.NEW),
        f.event("refund.created", refund, created=f.T0 + 10, api_version=f.NEW),
    )
    assert [c.applied for c in changes] == [True, True, False]
    with read_scope(engine) as session:
        [row] = refunds_for_customer(session=session, customer_id="cus_r")
        assert (row.id, row.status, row.amount, row.reason, row.charge_id) == (refund["id"], "succeeded", 1000,
                                                                                "duplicate", charge["id"])  # fmt: skip
    assert changes[1].details["charge_id"] == charge["id"]


def test_refund_without_a_known_charge_is_stored_without_customer(engine, apply):
    refund = f.refund(charge="ch_unknown", amount=100)
    apply(f.event("refund.created", refund, created=f.T0, api_version=f.NEW))
    assert fetch(engine, Refund, refund["id"]).customer_id is None

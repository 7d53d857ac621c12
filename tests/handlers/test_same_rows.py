"""The same history, delivered in either API shape and in any order, ends in the same rows."""

from __future__ import annotations

import random
from typing import Any

import pytest
from sqlmodel import select

from storage.db import read_scope
from storage.models import (
    Charge,
    Customer,
    Invoice,
    Refund,
    Subscription,
    SubscriptionItem,
    TimelineEntry,
)
from tests import factories as f
from tests.handlers.support import facts

TABLES = (Customer, Subscription, SubscriptionItem, Invoice, Charge, Refund)


def history(api_version: str, tag: str) -> list[dict[str, Any]]:
    """A customer subscribes, pays two invoices (one after a retry), gets a refund, then
    schedules a cancellation; plus a one-off charge that fails."""
    v, ids = api_version, (lambda prefix, n=1: f"{prefix}_{tag}{n}")
    cus = f.customer(
        api_version=v, id=ids("cus"), email="Ada@Example.com", default_payment_method="pm_1"
    )
    pro = f.price(
        api_version=v, id="price_pro", unit_amount=4900, nickname="Pro", product="prod_pro"
    )
    seats = f.price(
        api_version=v,
        id="price_seat",
        unit_amount=1000,
        product=f.product(id="prod_seat", name="Seats"),
    )
    items = [f.item(pro, id=ids("si", 1)), f.item(seats, 3, id=ids("si", 2))]
    sub = f.subscription(api_version=v, customer=cus["id"], id=ids("sub"), items=items,
                         coupons=[f.coupon(id="LOYAL", percent_off=10)])  # fmt: skip
    sub["discounts" if f.is_basil(v) else "discount"] = _same_discount_id(sub, v, ids("di"))
    leaving = dict(sub, cancel_at_period_end=True, cancellation_details={"reason": "cancellation_requested",
                                                                         "feedback": "missing_features", "comment": None})  # fmt: skip
    invoice_args = dict(
        api_version=v, customer=cus["id"], subscription=sub["id"], amount_due=7900, number="INV-1"
    )
    draft = f.invoice(**invoice_args, id=ids("in"), status="draft", created=f.T0)
    draft["number"] = None
    charge = f.charge(api_version=v, customer=cus["id"], id=ids("ch"), amount=7900, payment_intent=ids("pi"),
                      invoice=ids("in"), created=f.T0 + 60)  # fmt: skip
    paid = f.invoice(**invoice_args, id=ids("in"), status="paid", amount_paid=7900, paid_at=f.T0 + 60,
                     payment_intent=ids("pi"), charge=ids("ch"), attempt_count=1, created=f.T0)  # fmt: skip
    refunded = dict(charge, amount_refunded=2000)
    refund = f.refund(charge=charge["id"], id=ids("re"), amount=2000, reason="requested_by_customer",
                      payment_intent=ids("pi"), created=f.T0 + 500)  # fmt: skip
    declined = f.charge(api_version=v, customer=cus["id"], id=ids("ch", 2), status="failed", amount=300,
                        failure_code="card_declined", failure_message="Declined", created=f.T0 + 700)  # fmt: skip
    events = [
        f.event("customer.created", cus, created=f.T0, api_version=v),
        f.event("customer.subscription.created", sub, created=f.T0, api_version=v),
        f.event("invoice.created", draft, created=f.T0, api_version=v),
        f.event(
            "invoice.finalized",
            dict(
                paid,
                status="open",
                amount_paid=0,
                amount_remaining=7900,
                attempt_count=0,
                status_transitions={"paid_at": None},
            ),
            created=f.T0 + 1,
            api_version=v,
        ),  # fmt: skip
        f.event("charge.succeeded", charge, created=f.T0 + 60, api_version=v),
        f.event("invoice.paid", paid, created=f.T0 + 61, api_version=v),
        f.event("invoice.payment_succeeded", paid, created=f.T0 + 61, api_version=v),
        f.event("charge.refunded", refunded, created=f.T0 + 500, api_version=v),
        f.event("refund.created", refund, created=f.T0 + 500, api_version=v),
        f.event("charge.failed", declined, created=f.T0 + 700, api_version=v),
        f.event(
            "customer.subscription.updated",
            leaving,
            created=f.T0 + 900,
            api_version=v,
            previous_attributes={"cancel_at_period_end": False},
        ),  # fmt: skip
    ]
    if f.is_basil(v):
        payment = f.invoice_payment(
            invoice=paid["id"], payment_intent=ids("pi"), amount_paid=7900, created=f.T0 + 60
        )
        events.append(f.event("invoice_payment.paid", payment, created=f.T0 + 61, api_version=v))
    return events


def _same_discount_id(sub: dict[str, Any], api_version: str, discount_id: str) -> Any:
    if f.is_basil(api_version):
        return [dict(sub["discounts"][0], id=discount_id)]
    sub["discounts"] = [discount_id]
    return dict(sub["discount"], id=discount_id)


def snapshot(engine, tag: str) -> dict[str, list[dict[str, Any]]]:
    def untag(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace(tag, "TAG")
        if isinstance(value, list | tuple):
            return [untag(v) for v in value]
        if isinstance(value, dict):
            return {k: untag(v) for k, v in value.items()}
        return value

    with read_scope(engine) as session:
        result = {}
        for model in TABLES:
            rows = [untag(facts(row)) for row in session.exec(select(model))]
            result[model.__tablename__] = sorted((r for r in rows if "TAG" in str(r)), key=str)
        timeline = session.exec(select(TimelineEntry)).all()
        result["timeline"] = sorted(
            (
                untag((e.customer_id, e.occurred_at, e.kind, e.summary, e.object_id))
                for e in timeline
                if tag in e.customer_id
            ),
            key=str,
        )
        return result


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_both_shapes_in_any_order_give_the_same_rows(engine, apply, seed):
    for api_version, tag in ((f.OLD, "old"), (f.NEW, "new")):
        events = history(api_version, tag)
        random.Random(seed).shuffle(events)
        apply(*events)
    old, new = snapshot(engine, "old"), snapshot(engine, "new")
    assert [len(old[name]) for name in old] == [1, 1, 2, 1, 2, 1, 5]
    for name in old:
        assert old[name] == new[name], name


def test_delivered_in_order_the_rows_say_what_happened(engine, apply):
    apply(*history(f.NEW, "zq"))
    rows = snapshot(engine, "zq")
    [sub] = rows["subscription"]
    assert (sub["status"], sub["cancel_at_period_end"], sub["cancellation_feedback"]) == (
        "active",
        True,
        "missing_features",
    )
    [invoice] = rows["invoice"]
    assert (invoice["status"], invoice["payment_intent_id"], invoice["charge_id"]) == (
        "paid",
        "pi_TAG1",
        "ch_TAG1",
    )
    charges = {c["id"]: c for c in rows["charge"]}
    assert (charges["ch_TAG1"]["invoice_id"], charges["ch_TAG1"]["amount_refunded"]) == (
        "in_TAG1",
        2000,
    )
    assert charges["ch_TAG2"]["invoice_id"] is None
    assert [entry[2] for entry in sorted(rows["timeline"], key=lambda e: e[1])] == [
        "subscription_created", "invoice_paid", "refund_created", "charge_failed", "cancellation_scheduled",
    ]  # fmt: skip

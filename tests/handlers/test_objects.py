"""`apply_object`: objects read from Stripe's API go through the same conversion and guard."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from handlers.stripe.convert import ConversionError
from handlers.stripe.events import parse_event
from handlers.stripe.objects import apply_object
from handlers.stripe.registry import handler_for
from storage.db import read_scope, session_scope
from storage.models import Charge, Customer, Invoice, Refund, Subscription
from storage.timeline import timeline_for_customer
from tests import factories as f
from tests.handlers.support import at, fetch, items_of

FETCHED = at(f.T0 + 3600)


def backfill(engine, obj, *, version_at=FETCHED):
    with session_scope(engine) as session:
        return apply_object(session, obj, version_at=version_at)


def test_backfill_never_overwrites_newer_webhook_state(engine, apply):
    line = f.item(f.price(unit_amount=1000))
    fetched = f.subscription(customer="cus_b", items=[line])
    canceled = dict(fetched, status="canceled", canceled_at=f.T0 + 7200)
    apply(
        f.event("customer.subscription.deleted", canceled, created=f.T0 + 7200, api_version=f.NEW)
    )
    [change] = backfill(engine, fetched)
    assert (change.applied, change.details["reason"]) == (False, "stale")
    assert fetch(engine, Subscription, fetched["id"]).status == "canceled"


def test_newer_event_beats_an_older_backfill(engine, apply):
    inv = f.invoice(customer="cus_b", status="open")
    backfill(engine, inv)
    paid = dict(inv, status="paid", amount_paid=2000, amount_remaining=0)
    event = f.event("invoice.paid", paid, created=f.T0 + 3601, api_version=f.NEW)
    [change] = apply(event)
    assert change.applied
    assert change.details["previous"].status == "open"
    row = fetch(engine, Invoice, inv["id"])
    assert (row.status, row.version_at, row.version_event_id) == (
        "paid",
        at(f.T0 + 3601),
        event["id"],
    )


def test_an_event_created_before_the_fetch_loses_to_it(engine, apply):
    cus = f.customer(name="Fetched name")
    backfill(engine, cus)
    [change] = apply(
        f.event(
            "customer.updated", dict(cus, name="Older name"), created=f.T0 + 60, api_version=f.NEW
        )
    )
    assert not change.applied
    assert fetch(engine, Customer, cus["id"]).name == "Fetched name"


def test_backfill_of_history_writes_the_timeline_at_real_times(engine):
    sub = f.subscription(customer="cus_h", items=[f.item(f.price(nickname="Pro"))], status="canceled",
                         created=f.T0, canceled_at=f.T0 + 30 * f.DAY)  # fmt: skip
    backfill(engine, sub)
    backfill(engine, sub, version_at=FETCHED + timedelta(days=1))  # a second run adds nothing
    with read_scope(engine) as session:
        entries = timeline_for_customer(session=session, customer_id="cus_h")
        assert [(e.kind, e.occurred_at, e.event_id) for e in reversed(entries)] == [
            ("subscription_created", at(f.T0), None),
            ("subscription_canceled", at(f.T0 + 30 * f.DAY), None),
        ]


def test_every_object_type_dispatches(engine):
    charge = f.charge(customer="cus_all")
    objects = [
        f.customer(id="cus_all"),
        f.subscription(customer="cus_all", items=[f.item(f.price())]),
        f.invoice(customer="cus_all"),
        f.invoice_payment(invoice="in_all", charge=charge["id"]),
        charge,
        f.refund(charge=charge["id"]),
    ]
    kinds = [backfill(engine, obj)[0].object_type for obj in objects]
    assert kinds == ["customer", "subscription", "invoice", "invoice_payment", "charge", "refund"]
    assert fetch(engine, Refund, objects[-1]["id"]).customer_id == "cus_all"
    assert fetch(engine, Charge, charge["id"]).invoice_id == "in_all"


def test_unknown_object_and_naive_time_are_refused(engine):
    with pytest.raises(ConversionError, match="'plan'"):
        backfill(engine, {"id": "price_1", "object": "plan"})
    with pytest.raises(ValueError, match="timezone-aware"):
        backfill(engine, f.customer(), version_at=datetime(2026, 1, 1))


# --- Stripe's own example objects (schema-shaped, not consistent: notes.md §2) ------------


@pytest.mark.parametrize("name", ["customer", "subscription", "invoice", "charge", "refund"])
def test_stripes_example_objects_apply_without_error(engine, reference_dir, name):
    obj = json.loads((reference_dir / "stripe" / "fixtures" / f"{name}.json").read_text())
    event_type = {"customer": "customer.updated", "subscription": "customer.subscription.updated",
                  "invoice": "invoice.updated", "charge": "charge.updated", "refund": "refund.updated"}[name]  # fmt: skip
    event = parse_event(
        f.event(event_type, obj, created=1_234_567_890, api_version="2026-07-29.dahlia")
    )
    with session_scope(engine) as session:
        [change, *_] = handler_for(event_type)(session, event)
    assert (change.object_type, change.object_id, change.applied) == (name, obj["id"], True)
    model = {"customer": Customer, "subscription": Subscription, "invoice": Invoice, "charge": Charge,
             "refund": Refund}[name]  # fmt: skip
    row = fetch(engine, model, obj["id"])
    assert row.raw == obj
    assert row.version_at == datetime.fromtimestamp(1_234_567_890, UTC)


def test_several_events_for_one_object_in_one_unit_of_work(engine):
    """A worker may apply a batch of events in one transaction: each sees the previous."""
    line = f.item(f.price(unit_amount=1000))
    sub = f.subscription(customer="cus_batch", items=[line])
    bigger = f.subscription(
        customer="cus_batch", id=sub["id"], items=[f.item(line.price, 5, id=line.id)]
    )
    events = [
        f.event("customer.subscription.created", sub, created=f.T0, api_version=f.NEW),
        f.event("customer.subscription.updated", bigger, created=f.T0 + 5, api_version=f.NEW),
        f.event("customer.subscription.updated", sub, created=f.T0 + 1, api_version=f.NEW),  # late
        f.event("customer.subscription.created", sub, created=f.T0, api_version=f.NEW),
    ]
    with session_scope(engine) as session:
        changes = [c for raw in events for c in handler_for(raw["type"])(session, parse_event(raw))]
    assert [c.applied for c in changes] == [True, True, False, False]
    assert changes[1].details["mrr_before"] == 1000 and changes[1].details["mrr_after"] == 5000
    assert items_of(engine, sub["id"]) == {line.id: (line.price["id"], 5, 1000)}

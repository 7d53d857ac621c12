"""Events applied together in one unit of work, as the worker applies a batch, end in the same
rows as the same events applied one per transaction, in any order: the rows a batch reads
once (storage/held_rows.py) and the timeline lines it writes together stay exact."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy import event as sa_event
from sqlmodel import Session, select

from handlers.stripe.apply import ApplyOptions, _apply_together
from handlers.stripe.events import parse_event
from handlers.stripe.prefetch import upserted_objects
from handlers.stripe.registry import AppliedEvent, Reaction, handler_for
from storage.billing import customer_subscriptions, items_for_subscriptions
from storage.db import session_scope
from storage.inbox_claim import ClaimedEvent
from storage.models import Subscription
from tests import factories as f
from tests.handlers.support import facts, items_of
from tests.handlers.test_same_rows import history, snapshot


@pytest.fixture
def apply_batch(engine: Engine) -> Callable[..., None]:
    """Apply the events in the given order in one transaction, the worker's way (the batch
    helper itself, so that the order is the test's and not the inbox's)."""

    def run(*events: dict[str, Any], reactions: tuple[Reaction, ...] = ()) -> None:
        claimed = [
            ClaimedEvent(raw["id"], raw["type"], "webhook", json.dumps(raw), 0) for raw in events
        ]
        with session_scope(engine) as session:
            result = _apply_together(session, claimed, ApplyOptions(reactions=reactions))
        assert result.applied == len(events)

    return run


@pytest.mark.parametrize("api_version", [f.OLD, f.NEW])
@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_a_batch_ends_as_one_event_at_a_time(engine, apply, apply_batch, api_version, seed):
    alone, together = history(api_version, "one"), history(api_version, "bat")
    random.Random(seed).shuffle(alone)
    random.Random(seed).shuffle(together)
    apply(*alone)
    apply_batch(*together)
    assert snapshot(engine, "bat") == snapshot(engine, "one")


@pytest.mark.parametrize("split", [1, 4, 8])
def test_links_resolve_across_batches(engine, apply, apply_batch, split):
    """Part of a history in one batch, the rest in another: each batch finds what the other
    stored (the invoice payment, the charge, the refund) as a single event would."""
    alone, together = history(f.NEW, "one"), history(f.NEW, "bat")
    random.Random(split).shuffle(alone)
    random.Random(split).shuffle(together)
    apply(*alone)
    apply_batch(*together[:split])
    apply_batch(*together[split:])
    assert snapshot(engine, "bat") == snapshot(engine, "one")


def test_items_added_and_dropped_in_one_batch(engine, apply_batch):
    a, b = f.item(f.price()), f.item(f.price())
    sub = f.subscription(customer="cus_rb", items=[a, b])
    fewer = f.subscription(customer="cus_rb", id=sub["id"], items=[f.item(b.price, 4, id=b.id)])
    apply_batch(
        f.event("customer.subscription.created", sub, created=f.T0, api_version=f.OLD),
        f.event("customer.subscription.updated", fewer, created=f.T0 + 1, api_version=f.OLD),
    )
    assert items_of(engine, sub["id"]) == {b.id: (b.price["id"], 4, 2000)}


def test_a_customers_subscriptions_as_the_batch_holds_them(engine, apply_batch):
    """After every event of a batch, `customer_subscriptions` says what a flush and a query
    would say, without either."""
    cus = "cus_subs"
    a, b = f.item(f.price(unit_amount=1000)), f.item(f.price(unit_amount=3000), 2)
    first = f.subscription(customer=cus, items=[a, b])
    second = f.subscription(customer=cus, items=[f.item(f.price(unit_amount=500))])
    fewer = f.subscription(customer=cus, id=first["id"], items=[f.item(b.price, 5, id=b.id)])
    ended = dict(second, status="canceled", canceled_at=f.T0 + 3)
    apply_batch(f.event("customer.subscription.created", first, created=f.T0, api_version=f.OLD))
    compared: list[int] = []

    def compare(session: Session, applied: AppliedEvent) -> None:
        held = [
            (facts(row), [facts(item) for item in items])
            for row, items in customer_subscriptions(session=session, customer_id=cus)
        ]
        session.flush()
        rows = session.exec(select(Subscription).where(Subscription.customer_id == cus)).all()
        found = items_for_subscriptions(session=session, subscription_ids=[r.id for r in rows])
        stored = [
            (facts(row), [facts(item) for item in found[row.id]])
            for row in sorted(rows, key=lambda r: r.id)
        ]
        assert held == stored
        compared.append(len(held))

    apply_batch(
        f.event("customer.subscription.created", second, created=f.T0 + 1, api_version=f.OLD),
        f.event("customer.subscription.updated", fewer, created=f.T0 + 2, api_version=f.OLD),
        f.event("customer.subscription.deleted", ended, created=f.T0 + 3, api_version=f.OLD),
        reactions=(compare,),
    )
    assert compared == [2, 2, 2]


def test_a_batch_locks_the_invoice_payments_its_invoices_carry():
    """`lock_objects` is given every row the batch upserts, expanded payments included."""
    inv_id = f.new_id("in")
    payment = f.invoice_payment(invoice=inv_id, payment_intent="pi_lock")
    inv = f.invoice(customer="cus_lock", id=inv_id, payments=[payment])
    no_id = {"object": "invoice", "lines": []}  # an upcoming invoice has no id
    assert upserted_objects([inv, f.customer(id="cus_lock"), no_id]) == [
        ("invoice", inv_id),
        ("invoice_payment", payment["id"]),
        ("customer", "cus_lock"),
    ]


@pytest.mark.parametrize("api_version", [f.OLD, f.NEW])
def test_a_batch_writes_its_rows_in_one_flush(engine, api_version):
    """The store reads what a batch needs before it writes anything: applying a whole
    history (links, refunds before their charge, items replaced) flushes once, at the end,
    never before a lookup mid-batch (reactions are another module's business)."""
    events = history(api_version, "fl")
    random.Random(7).shuffle(events)
    claimed = [
        ClaimedEvent(raw["id"], raw["type"], "webhook", json.dumps(raw), 0) for raw in events
    ]
    flushes: list[int] = []
    with session_scope(engine) as session:

        @sa_event.listens_for(session, "before_flush")
        def count(session: Session, _context: object, _instances: object) -> None:
            flushes.append(len(session.new) + len(session.dirty))

        result = _apply_together(session, claimed, ApplyOptions())
    assert result.applied == len(events)
    assert len(flushes) == 1


@pytest.mark.parametrize("kind", ["customer", "subscription"])
def test_a_row_changed_before_its_insert_is_stored_as_one_changed_after_it(engine, kind):
    """A batch that creates an object and changes it before anything is flushed writes the
    change straight into the new row (`storage.billing._assign`: an INSERT has no history to
    record); changed after a flush, it goes through the ORM's UPDATE. Both store the same
    row and items, and report the same previous values."""
    reported = {}
    for tag in ("pending", "flushed"):
        if kind == "customer":
            first = f.customer(id=f"cus_{tag}", email="a@example.com", name="Ada")
            later = dict(first, email="b@example.com", delinquent=True, name=None)
            types = ("customer.created", "customer.updated")
        else:
            price = f.price(id="price_a", product="prod_a")
            a, b = f.item(price, id=f"si_{tag}a"), f.item(f.price(id="price_b"))
            first = f.subscription(customer="cus_x", id=f"sub_{tag}", items=[a, b])
            later = f.subscription(customer="cus_x", id=first["id"], status="past_due",
                                   items=[f.item(a.price, 3, id=a.id)])  # fmt: skip
            types = ("customer.subscription.created", "customer.subscription.updated")
        created, changed = (
            parse_event(json.dumps(f.event(kind, obj, created=f.T0 + n, api_version=f.OLD)))
            for n, (kind, obj) in enumerate(zip(types, (first, later), strict=True))
        )
        handler = handler_for(created.type)
        assert handler is not None
        with session_scope(engine) as session:
            handler(session, created)
            if tag == "flushed":
                session.flush()
            (change,) = handler(session, changed)
            previous = vars(change.details["previous"])
            reported[tag] = (
                {
                    k: v
                    for k, v in previous.items()
                    if k not in ("id", "raw", "updated_at", "version_event_id")
                },
                [facts(item) for item in change.details.get("items", [])],
            )
    assert str(reported["pending"]).replace("pending", "T") == str(reported["flushed"]).replace(
        "flushed", "T"
    )
    assert snapshot(engine, "pending") == snapshot(engine, "flushed")

"""Two workers on PostgreSQL applying events for the same object at once: the row lock taken
by the upsert's read makes the second wait and then decide on the newest version, so an
older event can never win by reading before a newer one commits; the advisory lock on
each object's name makes a worker about to create the same new object wait too, instead of
colliding with the first on the primary key; and the claim turn makes batches reach a shared
object in the order they were claimed."""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import select, text

from bot.settings import Settings
from handlers.revenue.ledger import mrr_ledger_reaction
from handlers.stripe.apply import ApplyOptions, BatchResult, apply_due_events
from handlers.stripe.events import parse_event
from handlers.stripe.registry import handler_for
from storage import inbox_claim
from storage.db import make_engine, session_scope
from storage.lanes import LANES, lane_of
from storage.models import Customer, Invoice, MrrMovement, Subscription
from storage.models.inbox import EventStatus
from tests import factories as f
from tests.handlers.support import fetch, items_of
from tests.ingest_support import inbox_rows, receive_events


def _apply(engine, raw):
    event = parse_event(raw)
    with session_scope(engine) as session:
        return handler_for(event.type)(session, event)


def _wait_until_blocked(engine, errors: list[BaseException], deadline_s: float = 10.0) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    end = time.monotonic() + deadline_s
    with engine.connect() as connection:
        while True:
            waiting = connection.execute(query).scalar_one()
            connection.rollback()  # pg_stat_activity is a snapshot per transaction
            if waiting:
                return
            assert not errors, f"the second worker failed: {errors[0]!r}"
            assert time.monotonic() < end, "the second worker never waited for the row lock"
            time.sleep(0.005)


def test_an_older_event_waits_for_a_newer_one_in_flight(postgres_url):
    engine = make_engine(postgres_url)
    inv = f.invoice(customer="cus_lock", status="open")
    _apply(engine, f.event("invoice.finalized", inv, created=f.T0, api_version=f.NEW))
    newer = f.event("invoice.paid", dict(inv, status="paid", amount_paid=2000, amount_remaining=0),
                    created=f.T0 + 20, api_version=f.NEW)  # fmt: skip
    older = f.event(
        "invoice.updated", dict(inv, attempt_count=1), created=f.T0 + 10, api_version=f.NEW
    )
    results = []
    with session_scope(engine) as session:
        event = parse_event(newer)
        handler_for(event.type)(session, event)
        session.flush()  # the newer version is written and its row locked, not yet committed
        errors: list[BaseException] = []

        def run_second() -> None:
            try:
                results.extend(_apply(engine, older))
            except BaseException as exc:  # reported below, with the main thread's assertion
                errors.append(exc)

        second = threading.Thread(target=run_second)
        second.start()
        _wait_until_blocked(engine, errors)
    second.join(timeout=30)
    assert [c.applied for c in results] == [False]
    row = fetch(engine, Invoice, inv["id"])
    assert (row.status, row.version_event_id) == ("paid", newer["id"])
    engine.dispose()


def _new_objects(number: int) -> tuple[list[dict], list[dict], dict]:
    """Events that create a customer, its subscription and an invoice, and the events that
    change each of them next; and what the rows must end as."""
    cus = f.customer(email=f"first{number}@example.com")
    seats = f.price(unit_amount=1000)
    line = f.item(seats, 2)
    sub = f.subscription(customer=cus["id"], items=[line])
    inv = f.invoice(customer=cus["id"], subscription=sub["id"], status="draft")
    more = f.subscription(customer=cus["id"], id=sub["id"], items=[f.item(seats, 5, id=line.id)])
    at = f.T0 + 10 * number
    first = [
        f.event("customer.created", cus, created=at, api_version=f.NEW),
        f.event("customer.subscription.created", sub, created=at + 1, api_version=f.NEW),
        f.event("invoice.created", inv, created=at + 2, api_version=f.NEW),
    ]
    then = [
        f.event("customer.updated", {**cus, "email": f"then{number}@example.com"},
                created=at + 1000, api_version=f.NEW),
        f.event("customer.subscription.updated", more, created=at + 1001, api_version=f.NEW),
        f.event("invoice.finalized", {**inv, "status": "open"}, created=at + 1002,
                api_version=f.NEW),
    ]  # fmt: skip
    expected = {"customer": cus["id"], "email": f"then{number}@example.com",
                "subscription": sub["id"], "item": line.id, "invoice": inv["id"]}  # fmt: skip
    return first, then, expected


def test_two_workers_creating_the_same_new_objects_never_collide(postgres_url, caplog):
    """Worker A's batch creates three customers, their subscriptions and invoices and is
    held open; worker B's batch has the next events about the same objects. B waits for A's
    commit (before it, B found no rows and inserted them too: one batch failed on the key,
    was split and its events retried), then applies its events to A's rows. (The first
    events are stored in lane 0 and the next ones in lane 1: batches of their own lanes
    would never share an object.)"""
    caplog.set_level(logging.INFO, logger="handlers.stripe.apply")
    engine = make_engine(postgres_url)
    stories = [_new_objects(number) for number in range(3)]
    first = [event for story in stories for event in story[0]]
    then = [event for story in stories for event in story[1]]
    receive_events(engine, first, lane=0)
    receive_events(engine, then, lane=1)
    paused, b_applying, proceed = threading.Event(), threading.Event(), threading.Event()
    results: dict[str, BatchResult] = {}
    errors: list[BaseException] = []

    def hold_a_open(session, applied) -> None:
        if threading.current_thread().name == "worker-a" and not paused.is_set():
            paused.set()  # A holds its batch's locks and has applied its first event
            proceed.wait(timeout=30)
        elif threading.current_thread().name == "worker-b":
            b_applying.set()

    def run(name: str) -> None:
        own = make_engine(postgres_url)  # its own connections, as a separate process would have
        try:
            options = ApplyOptions(batch_size=len(first), reactions=(hold_a_open,))
            results[name] = apply_due_events(engine=own, options=options)
        except BaseException as exc:  # reported by the assertions below
            errors.append(exc)
        finally:
            own.dispose()

    worker_a = threading.Thread(target=run, args=("a",), name="worker-a")
    worker_a.start()
    assert paused.wait(timeout=30), "worker A never started applying"
    worker_b = threading.Thread(target=run, args=("b",), name="worker-b")
    worker_b.start()
    _wait_until_blocked_or(engine, errors, b_applying)
    proceed.set()
    for worker in (worker_a, worker_b):
        worker.join(timeout=60)
    assert errors == []
    assert [r.getMessage() for r in caplog.records if "stripe.batch.split" in r.getMessage()] == []
    assert (results["a"].applied, results["a"].retrying, results["a"].dead) == (9, 0, 0)
    assert (results["b"].applied, results["b"].retrying, results["b"].dead) == (9, 0, 0)
    assert {(row.status, row.attempts) for row in inbox_rows(engine)} == {(EventStatus.APPLIED, 0)}
    for _, then_events, expected in stories:
        customer = fetch(engine, Customer, expected["customer"])
        assert (customer.email, customer.version_event_id) == (
            expected["email"],
            then_events[0]["id"],
        )
        subscription = fetch(engine, Subscription, expected["subscription"])
        assert subscription.version_event_id == then_events[1]["id"]
        assert {
            i: quantity for i, (_, quantity, _) in items_of(engine, subscription.id).items()
        } == {expected["item"]: 5}
        invoice = fetch(engine, Invoice, expected["invoice"])
        assert (invoice.status, invoice.version_event_id) == ("open", then_events[2]["id"])
    engine.dispose()


def _wait_until_blocked_or(engine, errors: list[BaseException], applying: threading.Event) -> None:
    """Until the second worker waits for a lock, or (without one to wait for) is applying."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    end = time.monotonic() + 10
    with engine.connect() as connection:
        while not applying.is_set():
            waiting = connection.execute(query).scalar_one()
            connection.rollback()  # pg_stat_activity is a snapshot per transaction
            if waiting:
                return
            assert not errors, f"a worker failed: {errors[0]!r}"
            assert time.monotonic() < end, "the second worker neither waited nor applied"
            time.sleep(0.005)


def test_two_workers_apply_one_subscription_s_events_in_created_order(postgres_url):
    """Worker A claims a subscription's creation and is slow to lock its objects; worker B
    claims next: the same subscription's expansion, 5 s later. B must not apply it before A
    applies the creation. (It used to: B took the subscription's lock first, A's creation was
    then stale, and the ledger showed one new line at the later quantity instead of the new
    subscription and its expansion.) The creation is stored in another lane than its
    customer's, as events stored before lanes existed are (lane 0): in the subscription's own
    lane B would find the lane taken and claim nothing. Not lane 0 itself: one customer in 64
    has that lane."""
    engine = make_engine(postgres_url)
    cus = f.customer()
    seats = f.price(unit_amount=1000)
    line = f.item(seats, 2)
    sub = f.subscription(customer=cus["id"], items=[line])
    more = f.subscription(customer=cus["id"], id=sub["id"], items=[f.item(seats, 5, id=line.id)])
    created = f.event("customer.subscription.created", sub, created=f.T0 + 1, api_version=f.NEW)
    updated = f.event("customer.subscription.updated", more, created=f.T0 + 6, api_version=f.NEW)
    # As if stored before lanes: B can claim the next one.
    elsewhere = (lane_of(cus["id"]) + 1) % LANES
    receive_events(engine, [created], lane=elsewhere)
    receive_events(engine, [updated])
    a_claimed, b_done = threading.Event(), threading.Event()
    errors: list[BaseException] = []

    def slow_for_a(event_type: str):
        if threading.current_thread().name == "worker-a" and not a_claimed.is_set():
            a_claimed.set()  # A has claimed its batch and not yet locked its objects
            _wait_until_blocked_or(engine, errors, b_done)
        return handler_for(event_type)

    def run(name: str) -> None:
        own = make_engine(postgres_url)  # its own connections, as a separate process would have
        try:
            options = ApplyOptions(
                batch_size=1,
                reactions=(mrr_ledger_reaction(Settings(_env_file=None)),),
                lookup=slow_for_a,
            )
            apply_due_events(engine=own, options=options)
        except BaseException as exc:  # reported by the assertions below
            errors.append(exc)
        finally:
            own.dispose()
            if name == "b":
                b_done.set()

    worker_a = threading.Thread(target=run, args=("a",), name="worker-a")
    worker_a.start()
    assert a_claimed.wait(timeout=30), "worker A never claimed"
    worker_b = threading.Thread(target=run, args=("b",), name="worker-b")
    worker_b.start()
    for worker in (worker_a, worker_b):
        worker.join(timeout=60)
    assert errors == []
    assert {row.status for row in inbox_rows(engine)} == {EventStatus.APPLIED}
    with session_scope(engine) as session:
        ledger = session.execute(
            select(MrrMovement.kind, MrrMovement.event_id).order_by(MrrMovement.id)
        ).all()
    assert [tuple(line) for line in ledger] == [
        ("new", created["id"]),
        ("expansion", updated["id"]),
    ]
    assert fetch(engine, Subscription, sub["id"]).version_event_id == updated["id"]
    engine.dispose()


def test_an_error_in_the_claim_turn_never_leaves_it_taken(postgres_url):
    """The turn is a session-level lock: if the block raises (here, the transaction aborted by
    a failed statement, so no unlock could run in it), the connection is discarded and the
    lock goes with it."""
    engine = make_engine(postgres_url)
    try:
        with session_scope(engine) as session, inbox_claim.claim_turn(session=session):
            session.execute(text("SELECT 1 / 0"))
    except Exception as exc:
        assert "division by zero" in str(exc)
    else:
        raise AssertionError("the block should have raised")
    other = make_engine(postgres_url)  # another worker
    free = text("SELECT pg_try_advisory_lock(:key)")
    with other.connect() as connection:
        assert connection.execute(free, {"key": inbox_claim.CLAIM_KEY}).scalar_one() is True
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": inbox_claim.CLAIM_KEY})
    other.dispose()
    engine.dispose()

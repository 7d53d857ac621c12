"""Inbox lanes: every event is stored with its owner's lane, and on PostgreSQL concurrent
workers claim from disjoint lanes, the oldest due events of each first."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import threading
import time
import uuid
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from bot.settings import Settings
from bot.worker import Worker
from handlers.revenue.ledger import mrr_ledger_reaction
from handlers.stripe.apply import ApplyOptions, apply_due_events
from handlers.stripe.events import parse_event
from storage import inbox, inbox_claim, lanes
from storage.db import make_engine, session_scope
from storage.migrate import alembic_config, upgrade
from storage.models import MrrMovement, Subscription
from storage.models.inbox import EventStatus
from storage.models.inbox import StripeEvent as InboxEvent
from storage.types import utcnow
from tests import factories as f
from tests.handlers.support import fetch
from tests.ingest_support import inbox_rows, new_inbox_events, receive_events

MIGRATIONS = Path(__file__).resolve().parents[2] / "storage" / "migrations" / "versions"
MIGRATION = next(MIGRATIONS.glob("*_inbox_lanes_and_pending_index.py"))


def _event(event_type: str, obj: dict) -> dict:
    return f.event(event_type, obj, created=f.T0, api_version=f.NEW)


def _lanes(engine) -> dict[str, int]:
    with engine.connect() as connection:
        return dict(connection.execute(select(InboxEvent.id, InboxEvent.lane)).all())


def test_an_event_s_owner_is_its_customer_else_its_parent_else_itself():
    cus = f.customer()
    sub = f.subscription(customer=cus["id"], items=[f.item(f.price(), 1)])
    charge = f.charge(customer=None, amount=500)
    cases = {
        "customer": (_event("customer.updated", cus), (cus["id"], None)),
        "subscription": (_event("customer.subscription.created", sub), (cus["id"], None)),
        "expanded customer": (
            _event("customer.subscription.updated", {**sub, "customer": cus}),
            (cus["id"], None),
        ),
        "guest charge": (_event("charge.succeeded", charge), (charge["id"], None)),
        "refund": (
            _event("refund.created", f.refund(charge=charge["id"], amount=100)),
            (charge["id"], charge["id"]),
        ),
        "invoice payment": (
            _event(
                "invoice_payment.paid",
                f.invoice_payment(invoice="in_parent", payment_intent="pi_p"),
            ),
            ("in_parent", "in_parent"),
        ),
    }
    for name, (raw, expected) in cases.items():
        assert parse_event(json.dumps(raw)).lane_owner == expected, name


def test_a_lane_is_a_stable_hash_of_the_owner_and_the_migration_computes_the_same():
    digest = hashlib.md5(b"cus_stable").digest()
    assert lanes.lane_of("cus_stable") == digest[0] % lanes.LANES
    assert lanes.lane_of(None) == 0
    spec = importlib.util.spec_from_file_location("lanes_migration", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    cus = f.customer()
    charge = f.charge(customer=cus["id"])
    for raw in (
        _event("customer.created", cus),
        _event("charge.succeeded", charge),
        _event("refund.created", f.refund(charge=charge["id"])),
        _event("invoice_payment.paid", f.invoice_payment(invoice="in_x", payment_intent="pi_x")),
        _event(
            "customer.subscription.updated",
            {**f.subscription(customer=cus["id"], items=[f.item(f.price(), 1)]), "customer": cus},
        ),
    ):
        event = parse_event(json.dumps(raw))
        owner, parent = migration._owner(json.dumps(raw))
        assert (owner, parent) == event.lane_owner
        assert migration._lane(owner) == lanes.lane_of(event.lane_owner[0])
    assert migration._owner("{not json") == (None, None)


def test_refunds_and_invoice_payments_take_their_parent_s_lane_on_postgres(postgres_url):
    """Their links to the charge or the invoice are filled by whichever of the two is
    applied second: in one lane they are never applied concurrently."""
    engine = make_engine(postgres_url)
    cus = f.customer()
    charge = f.charge(customer=cus["id"])
    inv = f.invoice(customer=cus["id"])
    charge_event = _event("charge.succeeded", charge)
    invoice_event = _event("invoice.finalized", inv)
    refund = _event("refund.created", f.refund(charge=charge["id"]))
    payment = _event(
        "invoice_payment.paid", f.invoice_payment(invoice=inv["id"], payment_intent="pi_y")
    )
    orphan = _event("refund.created", f.refund(charge="ch_never_stored"))
    receive_events(engine, [charge_event])
    receive_events(engine, [refund])  # its parent stored before
    receive_events(engine, [invoice_event, payment, orphan])  # its parent in the same batch
    lane_by_event = _lanes(engine)
    assert (
        lane_by_event[refund["id"]] == lane_by_event[charge_event["id"]] == lanes.lane_of(cus["id"])
    )
    assert (
        lane_by_event[payment["id"]]
        == lane_by_event[invoice_event["id"]]
        == lanes.lane_of(cus["id"])
    )
    assert lane_by_event[orphan["id"]] == lanes.lane_of("ch_never_stored")
    engine.dispose()


def _stories(customers: int, updates: int) -> tuple[list[dict], dict[str, tuple[str, list[str]]]]:
    """Each customer's subscription created, then grown one seat at a time; stories
    interleave in `created`. Returns the events and, for each subscription, its customer and
    its event ids in order."""
    events, order = [], {}
    seats = f.price(unit_amount=1000)
    for number in range(customers):
        cus = f.customer()
        line = f.item(seats, 1)
        sub = f.subscription(customer=cus["id"], items=[line])
        story = [f.event("customer.created", cus, created=f.T0 + number, api_version=f.NEW)]
        for step in range(updates + 1):
            body = f.subscription(
                customer=cus["id"], id=sub["id"], items=[f.item(seats, 1 + step, id=line.id)]
            )
            kind = "created" if step == 0 else "updated"
            story.append(
                f.event(f"customer.subscription.{kind}", body,
                        created=f.T0 + number + 10 * (step + 1), api_version=f.NEW)
            )  # fmt: skip
        events += story
        order[sub["id"]] = (cus["id"], [event["id"] for event in story[1:]])
    events.sort(key=lambda event: event["created"])
    return events, order


def _claim(session, worker: lanes.WorkerPresence | None, limit: int = 8):
    with inbox_claim.claim_turn(session=session):
        token = None if worker is None else worker.token
        return inbox_claim.claim_due(session=session, now=utcnow(), limit=limit, worker=token)


def test_two_concurrent_claimers_take_disjoint_lanes_oldest_events_first(postgres_url):
    engine = make_engine(postgres_url)
    events, _ = _stories(customers=12, updates=1)
    receive_events(engine, events)
    lane_of_event = _lanes(engine)
    created = {event["id"]: event["created"] for event in events}
    one, other = lanes.WorkerPresence(engine), lanes.WorkerPresence(engine)
    one.announce()
    other.announce()
    with session_scope(engine) as first:
        a = _claim(first, one)
        with session_scope(engine) as second:
            b = _claim(second, other)
            a_lanes = {lane_of_event[event.id] for event in a}
            b_lanes = {lane_of_event[event.id] for event in b}
            assert a and b
            assert a_lanes.isdisjoint(b_lanes)
            for claimed in (a, b):  # from each of its lanes, that lane's oldest events
                for lane in {lane_of_event[event.id] for event in claimed}:
                    ids = {event.id for event in claimed if lane_of_event[event.id] == lane}
                    in_lane = sorted(
                        (i for i, other in lane_of_event.items() if other == lane),
                        key=created.__getitem__,
                    )
                    newest = max(created[i] for i in ids)
                    assert {i for i in in_lane if created[i] < newest} <= ids
            second.rollback()
        first.rollback()
    one.withdraw()
    other.withdraw()
    engine.dispose()


def test_a_worker_alone_claims_the_oldest_events_of_every_lane(postgres_url):
    """No other worker announced: a batch is the oldest due events overall, exactly as
    without lanes; once another announces itself, lanes are left for it, and when it
    withdraws (or its connection dies), the worker is alone again."""
    engine = make_engine(postgres_url)
    events, _ = _stories(customers=12, updates=1)
    receive_events(engine, events)
    oldest = [event["id"] for event in events[:8]]  # events are stored in created order
    lanes_with_work = len(set(_lanes(engine).values()))
    me, other = lanes.WorkerPresence(engine), lanes.WorkerPresence(engine)
    me.announce()

    def claimed() -> list[str]:
        with session_scope(engine) as session:
            ids = [event.id for event in _claim(session, me)]
            session.rollback()
        return ids

    assert claimed() == oldest
    other.announce()
    shared = claimed()
    assert shared != oldest
    assert len({_lanes(engine)[i] for i in shared}) <= lanes_with_work // 2
    other.withdraw()
    assert claimed() == oldest
    other.announce()
    with engine.connect() as connection:  # the other worker's process dies
        connection.execute(
            text(
                "SELECT pg_terminate_backend(pid, 10000) FROM pg_locks WHERE locktype = 'advisory'"
                " AND classid = :namespace AND objid = :token AND objsubid = 2"
            ),
            {"namespace": lanes.WORKER_NAMESPACE, "token": other.token},
        )
    assert claimed() == oldest
    me.withdraw()
    engine.dispose()


def test_a_small_backlog_is_not_split():
    """Less than two batches' worth of free due events: one batch takes every lane."""
    with_work = [(5, 3), (9, 2), (1, 4)]
    assert lanes.choose_lanes(with_work, limit=100, probe=200) == [5, 9, 1]
    many = [(lane, 50) for lane in range(10)]  # 500 probed: two batches of 100 are there
    assert lanes.choose_lanes(many, limit=100, probe=200) == [0, 1]
    few_lanes = [(3, 150), (4, 150)]
    assert lanes.choose_lanes(few_lanes, limit=100, probe=200) == [3]  # half, at least one


def test_several_workers_apply_each_subscription_s_events_in_created_order(postgres_url):
    """Four workers with small batches: every subscription's ledger reads new, then one
    expansion per update, in `created` order, and every event is applied once."""
    engine = make_engine(postgres_url)
    events, order = _stories(customers=16, updates=3)
    receive_events(engine, events)
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def run() -> None:
        own = make_engine(postgres_url)  # its own connections, as a separate process would have
        presence = lanes.WorkerPresence(own)
        presence.announce()
        options = ApplyOptions(
            batch_size=7,
            reactions=(mrr_ledger_reaction(Settings(_env_file=None)),),
            worker=presence.token,
        )
        try:
            start.wait()
            while apply_due_events(engine=own, options=options).claimed:
                pass
        except BaseException as exc:  # reported by the assertions below
            errors.append(exc)
        finally:
            presence.withdraw()
            own.dispose()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    options = ApplyOptions(reactions=(mrr_ledger_reaction(Settings(_env_file=None)),))
    _drain(postgres_url, options)  # whatever was in others' lanes when a worker looked last
    assert errors == []
    assert {(row.status, row.attempts) for row in inbox_rows(engine)} == {(EventStatus.APPLIED, 0)}
    _assert_ledger_follows_each_story(engine, order)
    for sub_id, (_, event_ids) in order.items():
        assert fetch(engine, Subscription, sub_id).version_event_id == event_ids[-1]
    engine.dispose()


def _assert_ledger_follows_each_story(engine, order: dict[str, tuple[str, list[str]]]) -> None:
    """Each customer's ledger reads new, then one expansion per update, in `created` order."""
    with session_scope(engine) as session:
        ledger = session.execute(
            select(MrrMovement.customer_id, MrrMovement.kind, MrrMovement.event_id).order_by(
                MrrMovement.id
            )
        ).all()
    for cus_id, event_ids in order.values():
        lines = [(kind, event_id) for customer, kind, event_id in ledger if customer == cus_id]
        assert lines == [("new", event_ids[0])] + [("expansion", i) for i in event_ids[1:]]


def test_one_worker_s_two_threads_share_the_backlog_and_keep_each_customer_in_order(
    postgres_url,
):
    """WORKER_THREADS=2: both threads apply batches, every event is applied once, and when
    `drain()` returns nothing is left (the last thread alone took every lane)."""
    engine = make_engine(postgres_url)
    events, order = _stories(customers=24, updates=3)
    receive_events(engine, events)
    threads_seen: set[str] = set()

    def note_thread(session, applied) -> None:
        threads_seen.add(threading.current_thread().name)

    ledger = mrr_ledger_reaction(Settings(_env_file=None))
    worker = Worker(engine=engine, batch_size=5, reactions=(ledger, note_thread), threads=2)
    assert worker.threads == 2
    result = worker.drain()
    assert result.applied == len(events) and result.retrying == result.dead == 0
    assert len(threads_seen) == 2
    assert {(row.status, row.attempts) for row in inbox_rows(engine)} == {(EventStatus.APPLIED, 0)}
    _assert_ledger_follows_each_story(engine, order)
    engine.dispose()


def test_the_worker_has_one_thread_on_sqlite(sqlite_engine):
    assert Worker(engine=sqlite_engine, threads=2).threads == 1


def test_a_running_worker_s_threads_wake_on_commit_and_stop_together(postgres_url):
    engine = make_engine(postgres_url)
    worker = Worker(engine=engine, poll_seconds=60, threads=2)
    events, _ = _stories(customers=3, updates=1)
    worker.start()
    try:
        receive_events(engine, events)
        worker.wake()  # without this they would look again only in a minute
        deadline = time.monotonic() + 20
        while worker.totals.applied < len(events) and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.stop(timeout=20)
    assert worker.totals.applied == len(events)
    names = {thread.name for thread in threading.enumerate()}
    assert not {"billbot-worker", "billbot-worker-1"} & names
    engine.dispose()


def test_events_stored_before_lanes_are_applied_with_the_newer_ones(postgres_url):
    """Rows stored before the migration that were not pending keep lane 0; an event stored
    in lane 0 is claimed like any other, and its object's newer events in their own lane
    wait for it (the claim turn and the object's name lock)."""
    engine = make_engine(postgres_url)
    events, order = _stories(customers=6, updates=2)
    older = [e for e in events if e["created"] < f.T0 + 20]
    rows = new_inbox_events(older, lane=0)
    with engine.begin() as connection:
        inbox.insert_events(connection=connection, events=rows)
    receive_events(engine, [e for e in events if e["created"] >= f.T0 + 20])
    options = ApplyOptions(batch_size=4, reactions=(mrr_ledger_reaction(Settings(_env_file=None)),))
    workers = [threading.Thread(target=_drain, args=(postgres_url, options)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    _drain(postgres_url, options)
    assert {row.status for row in inbox_rows(engine)} == {EventStatus.APPLIED}
    for sub_id, (_, event_ids) in order.items():
        assert fetch(engine, Subscription, sub_id).version_event_id == event_ids[-1]
    engine.dispose()


def _drain(url: str, options: ApplyOptions) -> None:
    own = make_engine(url)
    try:
        while apply_due_events(engine=own, options=options).claimed:
            pass
    finally:
        own.dispose()


@pytest.fixture
def fresh_postgres_url(postgres_url):
    """An empty database on the test server, dropped afterwards (for migrating step by step)."""
    admin = make_engine(postgres_url).execution_options(isolation_level="AUTOCOMMIT")
    name = f"billbot_lanes_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def test_the_migration_gives_pending_events_their_lanes(fresh_postgres_url):
    engine = make_engine(fresh_postgres_url)
    config = alembic_config(engine)
    command.upgrade(config, "287f035cbe32")  # the revision before lanes
    cus = f.customer()
    charge = f.charge(customer=cus["id"])
    pending = [
        _event("charge.succeeded", charge),
        _event("refund.created", f.refund(charge=charge["id"])),
        _event("customer.updated", cus),
    ]
    applied = _event("customer.created", cus)
    with engine.begin() as connection:
        for raw, status in [(e, "pending") for e in pending] + [(applied, "applied")]:
            connection.execute(
                text(
                    "INSERT INTO stripe_event (id, type, livemode, created, object_id, source,"
                    " payload, received_at, status, attempts)"
                    " VALUES (:id, :type, false, now(), :object_id, 'webhook', :payload, now(),"
                    " :status, 0)"
                ),
                {"id": raw["id"], "type": raw["type"], "object_id": raw["data"]["object"]["id"],
                 "payload": json.dumps(raw), "status": status},
            )  # fmt: skip
    upgrade(engine)
    lane_by_event = _lanes(engine)
    assert [lane_by_event[e["id"]] for e in pending] == [lanes.lane_of(cus["id"])] * 3
    assert lane_by_event[applied["id"]] == 0
    engine.dispose()


def test_a_burst_is_claimed_by_walking_the_pending_index_not_by_sorting_the_backlog(
    fresh_postgres_url,
):
    """A burst lands in an inbox whose statistics do not know it (a new database here; in a
    running one, statistics that say pending events are rare, as most are applied). The
    planner, believing few events pending, would read and sort every pending event with its
    payload for each claim, so a backlog drained in n² time. The claim, and the lanes' look at
    the oldest due events, must walk the pending index in `created` order instead."""
    engine = make_engine(fresh_postgres_url)
    upgrade(engine)
    burst, _ = _stories(customers=100, updates=8)
    receive_events(engine, burst)
    plans: dict[str, str] = {}

    def explain(conn, cursor, statement, parameters, context, executemany):
        for name, marker in (("claim", "FOR UPDATE SKIP LOCKED"), ("lanes", "WITH busy AS")):
            if marker in statement:
                rows = cursor.connection.execute(f"EXPLAIN {statement}", parameters).fetchall()
                plans[name] = "\n".join(row[0] for row in rows)

    event.listen(engine, "after_cursor_execute", explain)
    try:
        with session_scope(engine) as session:
            claimed = _claim(session, None, limit=100)
            session.rollback()
    finally:
        event.remove(engine, "after_cursor_execute", explain)
        engine.dispose()
    assert [event.id for event in claimed] == [event["id"] for event in burst[:100]]
    assert set(plans) == {"claim", "lanes"}
    for name, plan in plans.items():
        assert "Index Scan using ix_stripe_event_pending" in plan, f"{name}:\n{plan}"
        assert "Bitmap" not in plan, f"{name}:\n{plan}"
    assert "Sort" not in plans["claim"], plans["claim"]


def test_an_error_while_claiming_surfaces_as_itself(postgres_url):
    """The index walk's setting is put back only when the claim went well: after a failed
    statement the transaction is aborted, and resetting it there would raise "current
    transaction is aborted" in place of the error the operator needs to see."""
    engine = make_engine(postgres_url)
    try:
        with (
            pytest.raises(DBAPIError, match="division by zero"),
            session_scope(engine) as session,
            inbox_claim._walking_pending_in_order(session),
        ):
            session.execute(text("SELECT 1 / 0"))
    finally:
        engine.dispose()

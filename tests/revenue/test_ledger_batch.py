"""The ledger's facts read for a whole batch (storage/ledger_memory.py) write the same lines
as the facts asked change by change: in one batch, one event per transaction, with an event
applied twice, new customers and subscriptions, and a second worker on PostgreSQL."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from sqlalchemy import Engine, event
from sqlmodel import Session, select

from bot.settings import Settings
from handlers.revenue.ledger import (
    MRR_ITEM_FIELDS,
    MRR_SUBSCRIPTION_FIELDS,
    _could_move_mrr,
    mrr_ledger_reaction,
    record_mrr_movements,
)
from handlers.stripe.apply import ApplyOptions, _apply_together
from handlers.stripe.events import parse_event
from handlers.stripe.registry import AppliedEvent, Change, handler_for
from storage import held_rows, store_mrr
from storage.billing import lock_objects
from storage.db import make_engine, session_scope
from storage.inbox_claim import ClaimedEvent
from storage.models.billing import Subscription, SubscriptionItem
from storage.models.ledger import CustomerMrr, MrrMovement, from_ledger_units
from storage.mrr import paused_mrr, subscription_mrr
from storage.store_mrr import StoreMrr
from tests import factories as f
from tests.revenue.factories import T0, applied, item, put_subscription, set_quantity
from tests.revenue.test_ledger import DAY, lines

LEDGER = mrr_ledger_reaction(Settings(_env_file=None))  # type: ignore[call-arg]


def without_batch(session: Session, applied: AppliedEvent) -> None:
    """The ledger as it was: every fact asked for its own change."""
    LEDGER(session, replace(applied, batch_event_ids=frozenset()))


def apply_in_one_transaction(engine: Engine, events: list[dict[str, Any]], reaction=LEDGER) -> None:
    claimed = [
        ClaimedEvent(raw["id"], raw["type"], "webhook", json.dumps(raw), 0) for raw in events
    ]
    with session_scope(engine) as session:
        result = _apply_together(session, claimed, ApplyOptions(reactions=(reaction,)))
    assert result.applied == len(events)


def ledger_history(tag: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Events before the batch (one customer subscribes twice) and the batch's: that
    customer grows and shrinks on one subscription, a new customer subscribes, grows and leaves (its first event twice),
    another opens two subscriptions at once."""
    ids = lambda prefix, n: f"{prefix}_{tag}{n}"  # noqa: E731
    pro, seat = (
        f.price(id="price_pro", unit_amount=4900),
        f.price(id="price_seat", unit_amount=1000),
    )

    def sub(n: int, customer: int, price: dict, quantity: int, **fields: Any) -> dict[str, Any]:
        items = [f.item(price, quantity, id=ids("si", n))]
        return f.subscription(
            customer=ids("cus", customer), id=ids("sub", n), items=items, **fields
        )

    def ev(n: int, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return f.event(f"customer.subscription.{kind}", obj, created=f.T0 + n * 60,
                       api_version=f.NEW, id=ids("evt", n))  # fmt: skip

    before = [ev(0, "created", sub(1, 1, pro, 1)), ev(9, "created", sub(5, 1, seat, 1))]
    joined = ev(2, "created", sub(2, 2, seat, 2))
    batch = [
        ev(1, "updated", sub(1, 1, pro, 3)),
        joined,
        ev(3, "updated", sub(2, 2, seat, 5)),
        joined,  # the same event again: a duplicate, nothing to record
        ev(4, "created", sub(3, 3, pro, 1)),
        ev(5, "created", sub(4, 3, seat, 4)),
        ev(6, "deleted", sub(2, 2, seat, 5, status="canceled", canceled_at=f.T0 + 360)),
        ev(7, "updated", sub(1, 1, pro, 2)),
        ev(8, "updated", sub(3, 3, pro, 1, cancel_at_period_end=True)),
    ]
    return before, batch


def ledger_of(engine: Engine, tag: str) -> tuple[list[tuple], list[tuple]]:
    def untag(value: str) -> str:
        return value.replace(tag, "TAG")

    with session_scope(engine) as session:
        movements = session.exec(select(MrrMovement).order_by(MrrMovement.id)).all()
        states = session.exec(select(CustomerMrr).order_by(CustomerMrr.customer_id)).all()
        return (
            [
                (
                    untag(m.customer_id),
                    m.currency,
                    m.kind,
                    m.amount,
                    m.mrr_after,
                    m.occurred_at,
                    untag(m.event_id),
                )  # fmt: skip
                for m in movements
                if tag in m.customer_id
            ],
            [
                (
                    untag(s.customer_id),
                    s.currency,
                    s.mrr,
                    s.paused,
                    s.paused_out,
                    s.first_paid_at,
                    s.changed_at,
                    untag(s.event_id),
                )  # fmt: skip
                for s in states
                if tag in s.customer_id
            ],
        )


def test_a_batch_records_what_one_event_at_a_time_records(engine):
    statements: list[str] = []
    for tag in ("one", "bat", "old"):
        before, batch = ledger_history(tag)
        apply_in_one_transaction(engine, before)
        if tag == "one":
            for raw in batch:
                apply_in_one_transaction(engine, [raw])
        elif tag == "bat":
            listen = lambda *args: statements.append(args[2])  # noqa: E731
            event.listen(engine, "before_cursor_execute", listen)
            try:
                apply_in_one_transaction(engine, batch)
            finally:
                event.remove(engine, "before_cursor_execute", listen)
        else:
            apply_in_one_transaction(engine, batch, reaction=without_batch)
    one = ledger_of(engine, "one")
    kinds = [
        "new",
        "expansion",
        "expansion",
        "new",
        "expansion",
        "new",
        "expansion",
        "churn",
        "contraction",
        "contraction",
    ]
    assert [line[2] for line in one[0]] == kinds
    assert ledger_of(engine, "bat") == one
    assert ledger_of(engine, "old") == one
    # the batch asked nothing per change (the one-by-one facts query names 'line'; the
    # customer's other subscription and its items were read once, with the batch's facts)
    assert not [s for s in statements if "'line'" in s]
    assert len([s for s in statements if "FROM subscription_item" in s]) <= 3  # 2 up front


def worker_batch(session: Session, *sub_ids: str) -> None:
    """Lock and read what the worker would for a batch of these subscriptions' events."""
    lock_objects(session=session, objects=[("subscription", sub_id) for sub_id in sub_ids])
    customers = {row.customer_id for row in held_rows.rows_held(session, Subscription)}
    found = held_rows.find_rows(
        session=session, model=Subscription, where={"customer_id": customers}
    )
    held_rows.load_items(session, [row.id for row in found])  # as `billing.prefetch_reads`


def test_an_event_that_wrote_lines_before_writes_none_again(engine):
    """Applied again in a later batch, with the store moved on meanwhile: its lines are found
    in the batch's read, as the one-by-one read finds them."""
    for customer, batch in (("cus_1", frozenset({"evt_1", "evt_2"})), ("cus_2", frozenset())):
        sub_id = f"sub_{customer}"
        with session_scope(engine) as session:
            put_subscription(session, sub_id, customer_id=customer, items=[item(4_900)])
        with session_scope(engine) as session:
            worker_batch(session, sub_id)
            record_mrr_movements(session, replace(applied("evt_1", T0, ("subscription", sub_id, customer)), batch_event_ids=batch))  # fmt: skip
        with session_scope(engine) as session:
            set_quantity(session, sub_id, 2)
            worker_batch(session, sub_id)
            for event_id, at in (("evt_1", T0), ("evt_2", T0 + DAY)):
                change = applied(event_id, at, ("subscription", sub_id, customer))
                record_mrr_movements(session, replace(change, batch_event_ids=batch))
        with session_scope(engine) as session:
            assert lines(session, customer) == [("new", 4_900), ("expansion", 4_900)]


def test_a_second_workers_commit_is_read_after_the_batch_lock(postgres_url):
    """Another worker holds the customer's ledger rows, having given the customer a new
    subscription: the batch's lock waits for its commit, and the facts read after it see the
    subscription, as the one-by-one read after the lock did."""
    engine = make_engine(postgres_url)
    try:
        with session_scope(engine) as session:
            put_subscription(session, "sub_a", customer_id="cus_w", items=[item(4_900)])
            record_mrr_movements(session, applied("evt_0", T0, ("subscription", "sub_a", "cus_w")))
        ready, done, errors = threading.Event(), threading.Event(), []

        def other_worker() -> None:
            try:
                with session_scope(engine) as other:
                    put_subscription(other, "sub_b", customer_id="cus_w", items=[item(1_000)])
                    change = applied("evt_b", T0 + DAY, ("subscription", "sub_b", "cus_w"))
                    record_mrr_movements(other, change)  # locks cus_w's rows
                    ready.set()
                    done.wait(10)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                ready.set()

        thread = threading.Thread(target=other_worker)
        thread.start()
        assert ready.wait(10) and not errors
        with session_scope(engine) as session:
            worker_batch(session, "sub_a")
            (held,) = held_rows.held_items(session, "sub_a") or []
            held.quantity = 2
            threading.Timer(0.3, done.set).start()  # commit while this batch waits
            change = applied("evt_a", T0 + 2 * DAY, ("subscription", "sub_a", "cus_w"))
            record_mrr_movements(session, replace(change, batch_event_ids=frozenset({"evt_a"})))
        thread.join(10)
        assert not errors
        with session_scope(engine) as session:
            assert lines(session, "cus_w") == [
                ("new", 4_900),
                ("expansion", 1_000),
                ("expansion", 4_900),
            ]
            (state,) = session.exec(select(CustomerMrr)).all()
            assert from_ledger_units(state.mrr) == 10_800
    finally:
        engine.dispose()


def test_a_sibling_subscription_another_worker_changed_is_read_after_the_lock(postgres_url):
    """The batch read the customer's other subscription without a lock (the worker reads a
    customer's subscriptions for the batch's lookups); another worker changed it and holds
    the customer's ledger rows. After the lock the ledger must not trust the earlier read."""
    engine = make_engine(postgres_url)
    try:
        with session_scope(engine) as session:
            put_subscription(session, "sub_s1", customer_id="cus_s", items=[item(4_900)])
            put_subscription(session, "sub_s2", customer_id="cus_s", items=[item(1_000)])
            record_mrr_movements(session, applied("evt_0", T0, ("subscription", "sub_s1", "cus_s")))
        ready, read, errors = threading.Event(), threading.Event(), []

        def other_worker() -> None:
            try:
                with session_scope(engine) as other:
                    worker_batch(other, "sub_s2")
                    (held,) = held_rows.held_items(other, "sub_s2") or []
                    held.quantity = 3
                    change = applied("evt_b", T0 + DAY, ("subscription", "sub_s2", "cus_s"))
                    record_mrr_movements(other, change)  # locks cus_s's rows
                    ready.set()
                    read.wait(10)
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                ready.set()

        thread = threading.Thread(target=other_worker)
        thread.start()
        assert ready.wait(10) and not errors
        with session_scope(engine) as session:
            worker_batch(session, "sub_s1")  # reads sub_s2 as committed: quantity 1
            read.set()
            thread.join(10)  # committed: quantity 3
            (held,) = held_rows.held_items(session, "sub_s1") or []
            held.quantity = 2
            change = applied("evt_a", T0 + 2 * DAY, ("subscription", "sub_s1", "cus_s"))
            record_mrr_movements(session, replace(change, batch_event_ids=frozenset({"evt_a"})))
        assert not errors
        with session_scope(engine) as session:
            assert lines(session, "cus_s") == [
                ("new", 5_900),
                ("expansion", 2_000),
                ("expansion", 4_900),
            ]
    finally:
        engine.dispose()


def test_changes_the_store_does_not_hold_count_whenever_they_are_made(engine):
    """The ledger looks at each pending object once per transaction; a change made by hand
    after it looked (an item of a subscription the batch does not hold, a held item given to
    such a subscription) still makes it flush and read, as a fresh read would."""
    with session_scope(engine) as session:
        put_subscription(session, "sub_h1", customer_id="cus_h1", items=[item(4_900)])
        put_subscription(session, "sub_h2", customer_id="cus_h2", items=[item(1_000)])
    with session_scope(engine) as session:
        batch = frozenset({"evt_1", "evt_2", "evt_3"})

        def react(event_id: str, day: int, sub_id: str, customer_id: str) -> None:
            change = applied(event_id, T0 + day * DAY, ("subscription", sub_id, customer_id))
            record_mrr_movements(session, replace(change, batch_event_ids=batch))

        worker_batch(session, "sub_h1")
        (held,) = held_rows.held_items(session, "sub_h1") or []
        held.quantity = 2
        react("evt_1", 0, "sub_h1", "cus_h1")
        (other,) = session.exec(select(SubscriptionItem).where(SubscriptionItem.subscription_id == "sub_h2")).all()  # fmt: skip
        other.quantity = 5  # by hand, on a subscription the batch does not hold
        react("evt_2", 1, "sub_h2", "cus_h2")
        held.subscription_id = "sub_h2"  # a held item given to it
        react("evt_3", 2, "sub_h2", "cus_h2")
        assert lines(session, "cus_h1") == [("new", 9_800)]
        assert lines(session, "cus_h2") == [("new", 5_000), ("expansion", 9_800)]


def test_a_pending_change_to_a_subscription_the_batch_only_read_counts(engine):
    """A subscription read for the batch's lookups but not locked is read from the database,
    unless it has a pending change: then it counts as a flush would write it."""
    with session_scope(engine) as session:
        put_subscription(session, "sub_f1", customer_id="cus_f", items=[item(4_900)])
        put_subscription(session, "sub_f2", customer_id="cus_f", items=[item(1_000)])
    with session_scope(engine) as session:
        worker_batch(session, "sub_f1")  # reads sub_f2 too, without a lock
        change = applied("evt_1", T0, ("subscription", "sub_f1", "cus_f"))
        record_mrr_movements(session, replace(change, batch_event_ids=frozenset({"evt_1"})))
        read_only = held_rows.get_row(session, Subscription, "sub_f2")
        assert read_only is not None and held_rows.held_row(session, Subscription, "sub_f2") is None
        read_only.status = "canceled"
        change = applied("evt_2", T0 + DAY, ("subscription", "sub_f1", "cus_f"))
        record_mrr_movements(session, replace(change, batch_event_ids=frozenset({"evt_2"})))
        assert lines(session, "cus_f") == [("new", 5_900), ("contraction", -1_000)]


def test_a_subscription_written_by_hand_and_flushed_meanwhile_counts(engine):
    """The batch's facts were read; then a subscription is written behind the store's back
    and flushed by someone else: the ledger asks the database again, as it did before."""
    with session_scope(engine) as session:
        put_subscription(session, "sub_w1", customer_id="cus_w1", items=[item(4_900)])
    with session_scope(engine) as session:
        batch = frozenset({"evt_1", "evt_2"})
        worker_batch(session, "sub_w1")
        change = applied("evt_1", T0, ("subscription", "sub_w1", "cus_w1"))
        record_mrr_movements(session, replace(change, batch_event_ids=batch))
        put_subscription(session, "sub_w2", customer_id="cus_w1", items=[item(1_000)])  # flushes
        change = applied("evt_2", T0 + DAY, ("subscription", "sub_w1", "cus_w1"))
        record_mrr_movements(session, replace(change, batch_event_ids=batch))
        assert lines(session, "cus_w1") == [("new", 4_900), ("expansion", 1_000)]


def test_a_subscription_the_batch_only_read_counts_where_its_pending_change_moved_it(engine):
    """Given another customer by hand, a subscription read for the batch's lookups no longer
    counts for its customer in the database: a flush would move it."""
    with session_scope(engine) as session:
        put_subscription(session, "sub_m1", customer_id="cus_m", items=[item(4_900)])
        put_subscription(session, "sub_m2", customer_id="cus_m", items=[item(1_000)])
    with session_scope(engine) as session:
        worker_batch(session, "sub_m1")  # reads sub_m2 too, without a lock
        change = applied("evt_1", T0, ("subscription", "sub_m1", "cus_m"))
        record_mrr_movements(session, replace(change, batch_event_ids=frozenset({"evt_1"})))
        read_only = held_rows.get_row(session, Subscription, "sub_m2")
        assert read_only is not None
        read_only.customer_id = "cus_n"
        change = applied("evt_2", T0 + DAY, ("subscription", "sub_m1", "cus_m"))
        record_mrr_movements(session, replace(change, batch_event_ids=frozenset({"evt_2"})))
        assert lines(session, "cus_m") == [("new", 5_900), ("contraction", -1_000)]


def test_the_stores_mrr_without_a_flush_is_what_a_flush_and_a_read_say(engine):
    """Asked after every event of a batch, the store's MRR (which looks at each pending
    object of the unit of work once, as it is added) is what a flush and a read of the
    database say: with subscriptions created, changed, given fewer items (a pending item
    taken out again) and moved to another customer within the batch."""
    kept = _mrr_after_each_event(engine, "kept", _mrr_in_store)
    assert kept == _mrr_after_each_event(engine, "read", _mrr_in_database)
    assert kept[-1] == [
        (["sub_TAG3"], {"usd": (9_800, 0)}),
        (["sub_TAG2"], {"usd": (1_000, 0)}),
        (["sub_TAG1", "sub_TAG4"], {"usd": (4_900, 0)}),
    ]


def _mrr_after_each_event(engine: Engine, tag: str, ask_mrr: Callable) -> list[Any]:
    pro, seat = f.price(unit_amount=4900), f.price(unit_amount=1000)
    ids = lambda prefix, n: f"{prefix}_{tag}{n}"  # noqa: E731
    a, b, c = ids("cus", "a"), ids("cus", "b"), ids("cus", "c")
    first, second = f.item(pro, 1, id=ids("si", 1)), f.item(seat, 2, id=ids("si", 2))
    third, fourth = f.item(seat, 1, id=ids("si", 3)), f.item(pro, 2, id=ids("si", 5))

    def sub(n: int, customer: str, items: list, **fields: Any) -> dict[str, Any]:
        return f.subscription(customer=customer, id=ids("sub", n), items=items, **fields)

    def ev(n: int, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
        return f.event(f"customer.subscription.{kind}", obj, created=f.T0 + n * 60,
                       api_version=f.NEW, id=ids("evt", n))  # fmt: skip

    apply_in_one_transaction(
        engine, [ev(0, "created", sub(1, a, [first])), ev(1, "created", sub(4, c, [third]))]
    )
    seen: list[Any] = []

    def ask(session: Session, applied: AppliedEvent) -> None:
        seen.append([ask_mrr(session, customer, tag) for customer in (a, b, c)])

    apply_in_one_transaction(
        engine,
        [
            ev(2, "updated", sub(1, a, [replace(first, quantity=3)])),
            ev(3, "created", sub(2, a, [second, f.item(pro, 1, id=ids("si", 4))])),
            ev(4, "created", sub(3, b, [fourth])),
            ev(5, "updated", sub(2, a, [replace(second, quantity=5)])),  # one item fewer
            ev(6, "updated", sub(3, a, [fourth])),  # moved to a, new in the batch
            ev(7, "updated", sub(4, c, [third], status="canceled")),
            ev(8, "updated", sub(2, b, [replace(second, quantity=1)])),  # moved to b
            ev(9, "updated", sub(1, c, [first])),  # moved to c, stored before the batch
        ],
        reaction=ask,
    )
    return seen


def _mrr_in_store(session: Session, customer_id: str, tag: str) -> tuple[list[str], dict]:
    """The customer's subscriptions and MRR as the store says, without a flush."""
    found = store_mrr.customer_subscriptions(session, customer_id=customer_id)
    return _untagged(
        found, store_mrr.customer_mrr_from_store(session, customer_id=customer_id), tag
    )


def _mrr_in_database(session: Session, customer_id: str, tag: str) -> tuple[list[str], dict]:
    """The same, from a flush and a read of the database alone."""
    session.flush()
    query = select(Subscription.id).where(Subscription.customer_id == customer_id)
    found = store_mrr.read_subscriptions(session, session.exec(query).all())
    totals: dict[str, StoreMrr] = {}
    for row, items in found:
        before = totals.get(row.currency, StoreMrr())
        totals[row.currency] = StoreMrr(
            before.mrr + subscription_mrr(row, items), before.paused + paused_mrr(row, items)
        )
    return _untagged(found, totals, tag)


def _untagged(found: list, mrr: dict[str, StoreMrr], tag: str) -> tuple[list[str], dict]:
    ids = sorted(row.id.replace(tag, "TAG") for row, _ in found)
    return ids, {currency: (value.mrr, value.paused) for currency, value in mrr.items()}


def test_only_a_change_to_what_mrr_is_computed_from_asks_the_ledger(engine):
    """`_could_move_mrr` reads the subscription's and items' inputs from their instance
    dicts: the same answer as reading every attribute, with one not loaded too."""
    pro, seat = f.price(unit_amount=4900), f.price(unit_amount=1000)
    first, second = f.item(pro, 1), f.item(seat, 2)

    def update(n: int, items: list, **fields: Any) -> dict[str, Any]:
        obj = f.subscription(customer="cus_in", id="sub_in", items=items, **fields)
        return f.event("customer.subscription.updated", obj, created=f.T0 + n, api_version=f.NEW)

    with session_scope(engine) as session:
        _handle(session, update(0, [first, second]))
    with session_scope(engine) as session:
        lock_objects(session=session, objects=[("subscription", "sub_in")])
        renewed = f.T0 + 31 * f.DAY
        for n, event_, moves in (
            (1, update(1, [second, first], current_period_start=renewed), False),
            (2, update(2, [first, replace(second, quantity=3)]), True),
            (3, update(3, [first]), True),
            (4, update(4, [first], status="past_due"), True),
            (5, update(5, [first], status="past_due", current_period_end=renewed), False),
        ):
            (change,) = _handle(session, event_)
            if n == 5:
                session.expire(held_rows.held_row(session, Subscription, "sub_in"), ["currency"])
            assert _could_move_mrr(session, change) is moves
            assert _read_every_input(session, change) is moves


def _handle(session: Session, raw: dict[str, Any]) -> list[Change]:
    event_ = parse_event(json.dumps(raw))
    handler = handler_for(event_.type)
    assert handler is not None
    return handler(session, event_)


def _read_every_input(session: Session, change: Change) -> bool:
    """`_could_move_mrr` as written before, with an attribute read per input."""
    previous, row = change.details["previous"], session.get(Subscription, change.object_id)
    if any(getattr(previous, name) != getattr(row, name) for name in MRR_SUBSCRIPTION_FIELDS):
        return True
    before, after = (
        sorted(
            (tuple(getattr(item, name) for name in MRR_ITEM_FIELDS) for item in items),
            key=lambda inputs: inputs[0],
        )
        for items in (change.details["previous_items"], change.details["items"])
    )
    return before != after

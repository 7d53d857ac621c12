"""The ledger inside one unit of work: no flush of its own, a memory that ends with the
transaction or savepoint, and no trust in rows the store does not hold."""

from __future__ import annotations

from sqlalchemy import event
from sqlalchemy.orm import make_transient
from sqlmodel import Session, select

from storage import held_rows
from storage.billing import lock_objects
from storage.db import make_engine, session_scope
from storage.models.billing import Subscription, SubscriptionItem
from storage.models.ledger import MrrMovement
from storage.store_mrr import customer_mrr_from_store
from tests.revenue.factories import T0, item, put_subscription, set_quantity
from tests.revenue.test_ledger import DAY, lines, react


def test_pending_changes_of_held_subscriptions_count_without_a_flush(engine):
    with session_scope(engine) as session:
        put_subscription(session, "sub_1", customer_id="cus_1", items=[item(4_900)])
    with session_scope(engine) as session:
        lock_objects(session=session, objects=[("subscription", "sub_1")])  # as the worker does
        (held,) = held_rows.held_items(session, "sub_1") or []
        held.quantity = 3  # what an upsert leaves pending
        flushes: list[object] = []
        event.listen(session, "after_flush", lambda *_: flushes.append(1))
        react(session, "evt_1", T0, "sub_1")
        held.quantity = 4
        react(session, "evt_2", T0 + DAY, "sub_1")
        react(session, "evt_2", T0 + DAY, "sub_1")  # the same event again: nothing more
        assert flushes == []
        assert lines(session) == [("new", 14_700), ("expansion", 4_900)]


def test_a_rolled_back_savepoint_takes_the_ledgers_memory_with_it(engine):
    with session_scope(engine) as session:
        put_subscription(session, "sub_1", customer_id="cus_1", items=[item(4_900)])
        savepoint = session.begin_nested()
        react(session, "evt_1", T0, "sub_1")
        savepoint.rollback()
        react(session, "evt_1", T0, "sub_1")
        assert lines(session) == [("new", 4_900)]


def test_a_subscription_the_store_does_not_hold_is_read_after_the_lock(postgres_url):
    """A row loaded earlier in the transaction, without a lock, may be older than what
    another transaction has committed since: the ledger reads the database instead."""
    engine = make_engine(postgres_url)
    try:
        with session_scope(engine) as session:
            put_subscription(session, "sub_1", customer_id="cus_1", items=[item(4_900)])
        with session_scope(engine) as session:
            stale = session.get(Subscription, "sub_1")
            stale_items = session.exec(select(SubscriptionItem)).all()
            with session_scope(engine) as other:
                set_quantity(other, "sub_1", 3)
            react(session, "evt_1", T0, "sub_1")
            assert lines(session) == [("new", 14_700)]
            assert stale is not None and [i.quantity for i in stale_items] == [1]
    finally:
        engine.dispose()


def test_an_object_taken_out_of_the_unit_of_work_and_added_again_hides_nothing(engine):
    """The store looks at the states the session added since it last looked. A state that
    left the session (expunged, or flushed and made transient) and was added again must not
    hide a subscription added meanwhile, one the store does not hold: a flush and a read
    count it."""
    with session_scope(engine) as session:
        put_subscription(session, "sub_1", customer_id="cus_1", items=[item(4_900)])
    for n, take_out in enumerate((_expunge, _flush_and_make_transient)):
        with session_scope(engine) as session:
            lock_objects(session=session, objects=[("subscription", "sub_1")])
            marker = _line(f"evt_marker{n}")
            session.add(marker)  # the last state added when the store looks
            assert _mrr(session, "cus_1") == 4_900
            take_out(session, marker)
            _add_by_hand(session, f"sub_added{n}", customer_id="cus_1", unit_amount=1_000)
            session.add(marker)  # the last state again
            assert _mrr(session, "cus_1") == 5_900
            session.rollback()


def _expunge(session: Session, row: MrrMovement) -> None:
    session.expunge(row)


def _flush_and_make_transient(session: Session, row: MrrMovement) -> None:
    session.flush()
    make_transient(row)
    row.id, row.event_id = None, f"{row.event_id}_again"  # inserted again as another line


def _add_by_hand(session: Session, sub_id: str, *, customer_id: str, unit_amount: int) -> None:
    """A subscription and its item, pending: not written through the store."""
    session.add(
        Subscription(
            id=sub_id, customer_id=customer_id, status="active", currency="usd", version_at=T0
        )
    )
    session.add(
        SubscriptionItem(
            id=f"{sub_id}_si", subscription_id=sub_id, currency="usd", **item(unit_amount)
        )
    )


def _line(event_id: str) -> MrrMovement:
    return MrrMovement(
        customer_id="cus_x", currency="usd", kind="new", amount=1, mrr_after=1,
        occurred_at=T0, event_id=event_id,
    )  # fmt: skip


def _mrr(session: Session, customer_id: str) -> int:
    mrr = customer_mrr_from_store(session, customer_id=customer_id)
    return int(mrr["usd"].mrr)

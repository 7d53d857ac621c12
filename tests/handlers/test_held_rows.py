"""The rows a worker batch reads up front (storage/held_rows.py) are exactly those a query per
id would find, however many ids a batch names: more than one IN list holds on SQLite, and
one array parameter on PostgreSQL."""

from __future__ import annotations

from sqlmodel import select

from storage import held_rows
from storage.db import session_scope
from storage.models import Charge, Subscription, SubscriptionItem
from tests import store_rows

MANY = held_rows.LOCK_CHUNK * 2 + 7


def test_many_rows_are_locked_read_and_found(engine):
    ids = [f"ch_held{n:05d}" for n in range(MANY)]
    with session_scope(engine) as session:
        for n, charge_id in enumerate(ids):
            if n % 3:  # every third id has no row
                store_rows.charge(
                    session, customer_id=f"cus_held{n % 50}", id=charge_id,
                    payment_intent_id=f"pi_held{n}" if n % 2 else None,
                )  # fmt: skip
    with session_scope(engine) as session:
        held_rows.lock_rows(session=session, model=Charge, ids=ids)
        for n, charge_id in enumerate(ids):
            row = held_rows.locked_row(session, Charge, charge_id)
            assert (row is not None) == bool(n % 3)
            assert row is None or row.id == charge_id
    with session_scope(engine) as session:
        intents = [f"pi_held{n}" for n in range(MANY)]
        customers = [f"cus_held{n}" for n in range(60)]
        read = held_rows.find_rows(
            session=session,
            model=Charge,
            where={"payment_intent_id": intents, "customer_id": customers},
        )
        assert sorted(row.id for row in read) == sorted(
            charge_id for n, charge_id in enumerate(ids) if n % 3
        )
        for n in range(MANY):
            found = held_rows.found_rows(session, Charge, "payment_intent_id", f"pi_held{n}")
            assert [row.id for row in found] == ([ids[n]] if n % 3 and n % 2 else [])
        for n in range(60):
            found = held_rows.found_rows(session, Charge, "customer_id", f"cus_held{n}")
            query = select(Charge.id).where(Charge.customer_id == f"cus_held{n}")
            assert sorted(row.id for row in found) == sorted(session.exec(query))


def test_many_subscriptions_items_are_read(engine):
    ids = [f"sub_held{n:05d}" for n in range(MANY)]
    with session_scope(engine) as session:
        for n, sub_id in enumerate(ids):
            store_rows.subscription(
                session, customer_id="cus_many", id=sub_id, items=[{}] * (n % 3)
            )
    with session_scope(engine) as session:
        held_rows.load_items(session, ids)
        for n, sub_id in enumerate(ids):
            assert len(held_rows.held_items(session, sub_id)) == n % 3
        stored = session.exec(select(SubscriptionItem.subscription_id)).all()
        assert len(stored) == sum(n % 3 for n in range(MANY))
        assert session.get(Subscription, ids[0]) is not None

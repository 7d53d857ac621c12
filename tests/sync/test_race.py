"""A backfill racing with webhooks for the same objects: two writers at once, on SQLite and
PostgreSQL. Whatever the interleaving, the store ends with the newest data and the ledger
agrees with it."""

from __future__ import annotations

import threading
from datetime import timedelta

from sqlmodel import select

from bot.settings import Settings
from handlers.sync.backfill import Backfill
from storage.db import read_scope
from storage.models import Customer, Subscription
from tests.fakes import stripe_objects as so
from tests.sync.support import (
    SLACK,
    ledger_agrees_with_store,
    quantities,
    receive,
    work,
)

COUNT = 16


def test_backfill_and_webhooks_for_the_same_objects_end_with_the_newest_data(
    engine, client, pacer, clock, stand_in
):
    settings = Settings(_env_file=None, **SLACK)
    read = int(clock.now().timestamp())  # the backfill reads at this time (its clock stands still)
    customers = [so.customer(n, created=so.EPOCH + n) for n in range(COUNT)]
    subs = [
        so.subscription(n, customer_id=c["id"], created=so.EPOCH + DAYS * n)
        for n, c in enumerate(customers)
    ]
    stand_in.add("customers", *customers)
    stand_in.add("subscriptions", *subs)
    # Per object: an older event (stale data the read supersedes) and a newer one (wins).
    events = []
    for n, (customer, sub) in enumerate(zip(customers, subs, strict=True)):
        stale_sub = {**sub, "items": _with_quantity(sub, 7)}
        newer_sub = {**sub, "items": _with_quantity(sub, 3)}
        events += [
            so.event(4 * n, type="customer.updated", obj={**customer, "email": "old@example.com"}, created=read - 3600),
            so.event(4 * n + 1, type="customer.updated", obj={**customer, "email": f"new{n}@example.com"}, created=read + 60),
            so.event(4 * n + 2, type="customer.subscription.updated", obj=stale_sub, created=read - 3600),
            so.event(4 * n + 3, type="customer.subscription.updated", obj=newer_sub, created=read + 60),
        ]  # fmt: skip
    events.reverse()  # newest first: the worker still applies oldest `created` first per batch
    start = threading.Barrier(2)
    failures: list[BaseException] = []

    def webhooks() -> None:
        try:
            start.wait()
            for event in events:
                receive(engine, event)
                work(engine, settings, batch_size=1)
        except BaseException as exc:  # reported by the main thread
            failures.append(exc)

    thread = threading.Thread(target=webhooks)
    thread.start()
    start.wait()
    results = Backfill(engine=engine, client=client, pacer=pacer, now=clock.now, page_size=2).run(
        only=["customers", "subscriptions"]
    )
    thread.join()

    assert failures == []
    # Events whose attempt lost a race are retried after their backoff: let that time pass.
    later = clock.now() + timedelta(days=1)
    work(engine, settings, clock=lambda: later)
    assert [r.fetched for r in results] == [COUNT, COUNT]
    assert quantities(engine) == {s["id"]: 3 for s in subs}
    assert sorted(_subscriptions(engine)) == sorted(s["id"] for s in subs)
    with read_scope(engine) as session:
        emails = {c.id: c.email for c in session.exec(select(Customer))}
    assert emails == {c["id"]: f"new{n}@example.com" for n, c in enumerate(customers)}
    assert ledger_agrees_with_store(engine) == {}


DAYS = 86400


def _with_quantity(sub: dict, quantity: int) -> dict:
    item = {**sub["items"]["data"][0], "quantity": quantity}
    return {**sub["items"], "data": [item]}


def _subscriptions(engine) -> list[str]:
    with read_scope(engine) as session:
        return list(session.exec(select(Subscription.id)))

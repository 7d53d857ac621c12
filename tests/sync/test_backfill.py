"""Backfill through the real stripe client against the loopback stand-in, on real databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from handlers.sync.backfill import Backfill, BackfillInterrupted, UnknownObjectType, parse_only
from storage import sync as cursors
from storage.db import make_engine, read_scope, session_scope
from storage.models import Customer
from storage.models.sync import SyncStatus
from tests.fakes import stripe_objects as so

DAY = 86400


def add_customers(stand_in, count: int, *, start: int = so.EPOCH, step: int = DAY) -> list[dict]:
    made = [so.customer(n, created=start + n * step) for n in range(count)]
    stand_in.add("customers", *made)
    return made


def newest_first(objects: list[dict]) -> list[str]:
    return [o["id"] for o in sorted(objects, key=lambda o: (o["created"], o["id"]), reverse=True)]


def stored_customer_ids(engine) -> set[str]:
    with read_scope(engine) as session:
        return set(session.exec(select(Customer.id)))


@pytest.fixture
def sqlite_db(sqlite_url):
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


def make_backfill(engine, client, pacer, clock, apply, **kwargs) -> Backfill:
    return Backfill(
        engine=engine, client=client, pacer=pacer, apply_object=apply, now=clock.now, **kwargs
    )


def test_pages_through_every_customer_newest_first(
    sqlite_db, client, pacer, clock, stand_in, recorder
):
    made = add_customers(stand_in, 7)
    seen = []
    backfill = make_backfill(
        sqlite_db, client, pacer, clock, recorder, page_size=3, on_progress=seen.append
    )

    [result] = backfill.run(only=["customers"])

    assert (result.pages, result.fetched, result.applied, result.done) == (3, 7, 7, True)
    order = newest_first(made)
    assert [oid for _, oid, _ in recorder.seen] == order
    queries = [r.query for r in stand_in.served("customers")]
    assert [q.get("starting_after") for q in queries] == [None, order[2], order[5]]
    assert {q["limit"] for q in queries} == {"3"}
    assert stored_customer_ids(sqlite_db) == {c["id"] for c in made}
    assert [p.fetched for p in seen] == [3, 6, 7, 7] and seen[-1].done
    with read_scope(sqlite_db) as session:
        cursor = cursors.get_cursor(session=session, object_type="customers")
        assert (cursor.status, cursor.starting_after, cursor.fetched) == (
            SyncStatus.DONE,
            order[-1],
            7,
        )


def test_subscriptions_of_every_status_are_read(
    sqlite_db, client, pacer, clock, stand_in, recorder
):
    statuses = ["active", "canceled", "trialing", "past_due", "incomplete_expired", "unpaid"]
    stand_in.add(
        "subscriptions",
        *[
            so.subscription(n, customer_id="cus_1", created=so.EPOCH + n, status=s)
            for n, s in enumerate(statuses)
        ],
    )
    make_backfill(sqlite_db, client, pacer, clock, recorder).run(only=["subscriptions"])

    assert sorted(obj_id for _, obj_id, _ in recorder.seen) == [f"sub_{n:08d}" for n in range(6)]
    assert stand_in.served("subscriptions")[0].query["status"] == "all"


def test_only_reads_the_listed_types_in_backfill_order(
    sqlite_db, client, pacer, clock, stand_in, recorder
):
    add_customers(stand_in, 2)
    stand_in.add("refunds", so.refund(1, charge_id="ch_1", created=so.EPOCH))
    stand_in.add("invoices", so.invoice(1, customer_id="cus_1", created=so.EPOCH))

    results = make_backfill(sqlite_db, client, pacer, clock, recorder).run(
        only=["refunds", "customers"]
    )

    assert [r.object_type for r in results] == ["customers", "refunds"]
    assert {r.resource for r in stand_in.requests} == {"customers", "refunds"}


def test_parse_only_names_the_choices():
    assert parse_only("invoices, customers") == ("customers", "invoices")
    assert parse_only(None) == ("customers", "subscriptions", "invoices", "charges", "refunds")
    with pytest.raises(UnknownObjectType, match="'payouts'.*choose from customers, subscriptions"):
        parse_only("customers,payouts")
    with pytest.raises(UnknownObjectType, match="empty"):
        parse_only(" , ")


def test_since_asks_stripe_for_newer_objects_only(
    sqlite_db, client, pacer, clock, stand_in, recorder
):
    made = add_customers(stand_in, 10)
    since = datetime.fromtimestamp(made[6]["created"], UTC)

    [result] = make_backfill(sqlite_db, client, pacer, clock, recorder).run(
        only=["customers"], since=since
    )

    assert stand_in.served("customers")[0].query["created[gte]"] == str(made[6]["created"])
    assert result.fetched == 4
    assert stored_customer_ids(sqlite_db) == {c["id"] for c in made[6:]}


def test_429s_are_retried_after_the_wait_stripe_asks_for(
    sqlite_db, client, pacer, clock, stand_in, recorder
):
    made = add_customers(stand_in, 10)
    stand_in.rate_limit(every=2, retry_after="3")

    [result] = make_backfill(sqlite_db, client, pacer, clock, recorder, page_size=3).run(
        only=["customers"]
    )

    assert result.fetched == 10 and stored_customer_ids(sqlite_db) == {c["id"] for c in made}
    limited = [r for r in stand_in.requests if r.status == 429]
    assert [r.number for r in limited] == [2, 4, 6]
    for r in limited:  # the very next request repeats the one that was refused
        assert (
            stand_in.requests[r.number].query == r.query
            and stand_in.requests[r.number].status == 200
        )
    assert clock.sleeps == [3.0, 3.0, 3.0]
    assert pacer.retries == 3


def test_429_without_retry_after_backs_off_exponentially(
    sqlite_db, client, clock, stand_in, recorder
):
    add_customers(stand_in, 2)
    stand_in.rate_limit(every=1)  # every request refused
    from handlers.sync.pacing import Pacer

    pacer = Pacer(max_per_second=25, clock=clock, sleep=clock.sleep, max_attempts=5)
    with pytest.raises(BackfillInterrupted, match="HTTP 429"):
        make_backfill(sqlite_db, client, pacer, clock, recorder).run(only=["customers"])
    assert clock.sleeps == [1.0, 2.0, 4.0, 8.0]
    assert len(stand_in.requests) == 5


def test_stripe_should_retry_false_is_obeyed(sqlite_db, client, pacer, clock, stand_in, recorder):
    add_customers(stand_in, 2)
    stand_in.rate_limit(every=1, retry_after="1", should_retry="false")
    with pytest.raises(BackfillInterrupted):
        make_backfill(sqlite_db, client, pacer, clock, recorder).run(only=["customers"])
    assert len(stand_in.requests) == 1 and clock.sleeps == []


@pytest.mark.parametrize("kind", ["500", "drop"])
def test_failure_mid_way_then_resume_from_the_cursor(
    engine, client, pacer, clock, stand_in, recorder, kind
):
    made = add_customers(stand_in, 9)
    order = newest_first(made)
    stand_in.fail(from_request=3, kind=kind)  # pages 1 and 2 succeed, then Stripe goes away
    backfill = make_backfill(engine, client, pacer, clock, recorder, page_size=2)

    with pytest.raises(BackfillInterrupted, match=f"resume after {order[3]}"):
        backfill.run(only=["customers"])

    assert stored_customer_ids(engine) == set(order[:4])
    with read_scope(engine) as session:
        cursor = cursors.get_cursor(session=session, object_type="customers")
        assert (cursor.status, cursor.starting_after, cursor.pages) == (
            SyncStatus.FAILED,
            order[3],
            2,
        )
        assert cursor.last_error
    failed_attempts = len(stand_in.requests) - 2
    assert failed_attempts == pacer.max_attempts

    stand_in.heal()
    first_of_second_run = len(stand_in.requests)
    [result] = backfill.run(only=["customers"])

    second_run = stand_in.requests[first_of_second_run:]
    assert [r.query.get("starting_after") for r in second_run] == [order[3], order[5], order[7]]
    assert result.resumed_from == order[3]
    assert (result.fetched, result.pages, result.done) == (9, 5, True)
    assert stored_customer_ids(engine) == set(order)
    assert len(recorder.seen) == 9  # nothing applied twice


def test_a_finished_backfill_starts_over_next_time(
    sqlite_db, client, pacer, clock, stand_in, recorder
):
    add_customers(stand_in, 3)
    backfill = make_backfill(sqlite_db, client, pacer, clock, recorder, page_size=2)
    backfill.run(only=["customers"])
    [again] = backfill.run(only=["customers"])
    assert again.resumed_from is None and again.fetched == 3
    assert [r.query.get("starting_after") for r in stand_in.served("customers")][2] is None


def test_a_different_since_does_not_resume_the_old_cursor(
    sqlite_db, client, pacer, clock, stand_in, recorder
):
    made = add_customers(stand_in, 4)
    stand_in.fail(from_request=2)
    backfill = make_backfill(sqlite_db, client, pacer, clock, recorder, page_size=2)
    with pytest.raises(BackfillInterrupted):
        backfill.run(only=["customers"])
    stand_in.heal()
    [result] = backfill.run(
        only=["customers"], since=datetime.fromtimestamp(made[0]["created"], UTC)
    )
    assert result.resumed_from is None and result.fetched == 4


def test_newer_webhook_state_wins_and_older_loses(
    sqlite_db, client, pacer, clock, stand_in, recorder
):
    made = add_customers(stand_in, 2)
    read_at = clock.now()
    with session_scope(sqlite_db) as session:
        session.add(
            Customer(
                id=made[0]["id"],
                email="newer@example.com",
                version_at=read_at,
                version_event_id="evt_new",
            )
        )
        session.add(
            Customer(
                id=made[1]["id"],
                email="older@example.com",
                version_at=read_at - timedelta(seconds=2),
                version_event_id="evt_old",
            )
        )

    [result] = make_backfill(sqlite_db, client, pacer, clock, recorder).run(only=["customers"])

    assert (result.fetched, result.applied) == (2, 1)
    with read_scope(sqlite_db) as session:
        assert session.get(Customer, made[0]["id"]).email == "newer@example.com"
        refreshed = session.get(Customer, made[1]["id"])
        assert refreshed.email == made[1]["email"]
        assert refreshed.version_event_id is None
        assert refreshed.version_at == read_at.replace(microsecond=0) - timedelta(seconds=1)


def test_after_object_hook_sees_each_change_and_bad_objects_are_skipped(
    sqlite_db, client, pacer, clock, stand_in, recorder
):
    made = [so.customer(n, created=so.EPOCH + n * DAY) for n in range(5)]
    made[2]["currency"] = "us dollars"  # not a currency code: the conversion refuses it
    stand_in.add("customers", *made)
    hooked = []
    backfill = make_backfill(
        sqlite_db, client, pacer, clock, recorder, after_object=lambda s, ch: hooked.extend(ch)
    )

    [result] = backfill.run(only=["customers"])

    assert (result.fetched, result.applied, result.skipped) == (5, 4, 1)
    assert sorted(c.object_id for c in hooked) == sorted(c["id"] for c in made if c is not made[2])
    assert stored_customer_ids(sqlite_db) == {c["id"] for c in made} - {made[2]["id"]}


def test_a_wrong_key_stops_with_a_clear_message(
    sqlite_db, settings, pacer, clock, stand_in, recorder
):
    from bot.settings import Settings
    from bot.stripe_client import make_stripe_client

    wrong = make_stripe_client(
        Settings(stripe_api_key="sk_test_wrong", stripe_api_base=stand_in.url)
    )
    with pytest.raises(BackfillInterrupted, match="refused STRIPE_API_KEY"):
        make_backfill(sqlite_db, wrong, pacer, clock, recorder).run(only=["customers"])
    assert stand_in.requests[0].authorization == "Bearer sk_test_wrong" and clock.sleeps == []

"""Backfilled and imported history goes into the MRR ledger dated at its real time, and on
the timeline, and never to Slack (real apply_object, real ledger, SQLite and PostgreSQL)."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from decimal import Decimal

from bot.settings import Settings
from handlers.sync.backfill import Backfill
from handlers.sync.csv_import import import_csv
from storage.models.ledger import from_ledger_units, to_ledger_units
from storage.mrr import MrrPolicy
from tests.fakes import stripe_objects as so
from tests.sync.support import (
    SLACK,
    alert_rows,
    ledger,
    ledger_agrees_with_store,
    outbox_rows,
    receive,
    timeline,
    work,
)
from tests.sync.test_csv_import import SUBSCRIPTIONS


def ts(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp())


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def backfill(engine, client, pacer, clock, **kwargs) -> Backfill:
    return Backfill(engine=engine, client=client, pacer=pacer, now=clock.now, **kwargs)


def history(stand_in) -> None:
    stand_in.add("customers", *[so.customer(n, created=ts(2024, 1, 1) + n) for n in range(1, 6)])
    stand_in.add(
        "subscriptions",
        so.subscription(1, customer_id="cus_00000001", created=ts(2024, 2, 1)),
        so.subscription(
            2,
            customer_id="cus_00000002",
            created=ts(2024, 3, 1),
            status="canceled",
            canceled_at=ts(2024, 9, 1),
        ),
        so.subscription(
            3,
            customer_id="cus_00000003",
            created=ts(2024, 1, 1),
            status="canceled",
            canceled_at=ts(2024, 4, 1),
        ),
        so.subscription(4, customer_id="cus_00000003", created=ts(2024, 6, 1), unit_amount=3000),
        so.subscription(
            5, customer_id="cus_00000004", created=ts(2024, 5, 1), trial_end=ts(2024, 5, 15)
        ),
        so.subscription(
            6,
            customer_id="cus_00000005",
            created=ts(2024, 5, 1),
            trial_end=ts(2024, 5, 15),
            status="canceled",
            canceled_at=ts(2024, 5, 10),
        ),
    )


def test_backfilled_history_is_dated_at_its_real_time(engine, client, pacer, clock, stand_in):
    history(stand_in)

    results = backfill(engine, client, pacer, clock, page_size=2).run(
        only=["customers", "subscriptions"]
    )

    assert results[-1].ledger_lines == 7
    assert ledger(engine, "cus_00000001") == [("new", at(2024, 2, 1), Decimal(2000))]
    assert ledger(engine, "cus_00000002") == [
        ("new", at(2024, 3, 1), Decimal(2000)),
        ("churn", at(2024, 9, 1), Decimal(-2000)),
    ]
    assert ledger(engine, "cus_00000003") == [
        ("new", at(2024, 1, 1), Decimal(2000)),
        ("churn", at(2024, 4, 1), Decimal(-2000)),
        ("reactivation", at(2024, 6, 1), Decimal(3000)),
    ]
    assert ledger(engine, "cus_00000004") == [("new", at(2024, 5, 15), Decimal(2000))]
    assert ledger(engine, "cus_00000005") == []  # canceled during its trial: never counted
    assert ledger_agrees_with_store(engine) == {}
    assert timeline(engine, "cus_00000002") == [
        ("subscription_created", at(2024, 3, 1)),
        ("subscription_canceled", at(2024, 9, 1)),
    ]
    assert outbox_rows(engine) == [] and alert_rows(engine) == []


def test_a_second_backfill_writes_no_more_lines(sqlite_engine, client, pacer, clock, stand_in):
    history(stand_in)
    runner = backfill(sqlite_engine, client, pacer, clock)
    runner.run(only=["subscriptions"])
    before = {c: ledger(sqlite_engine, c) for c in ("cus_00000002", "cus_00000003")}

    clock.sleep(3600)
    [again] = runner.run(only=["subscriptions"])

    assert again.ledger_lines == 0
    assert {c: ledger(sqlite_engine, c) for c in before} == before


def test_period_end_policy_churns_when_the_subscription_ended(
    sqlite_engine, client, pacer, clock, stand_in
):
    scheduled = so.subscription(
        1,
        customer_id="cus_00000001",
        created=ts(2024, 1, 1),
        status="canceled",
        canceled_at=ts(2024, 3, 10),
    )
    scheduled.update(ended_at=ts(2024, 4, 1), cancel_at_period_end=True)
    stand_in.add("subscriptions", scheduled)

    backfill(sqlite_engine, client, pacer, clock, policy=MrrPolicy(churn_at="period_end")).run(
        only=["subscriptions"]
    )

    assert [(k, when) for k, when, _ in ledger(sqlite_engine, "cus_00000001")] == [
        ("new", at(2024, 1, 1)),
        ("churn", at(2024, 4, 1)),
    ]


def test_a_cancellation_webhooks_missed_is_churn_at_its_own_time(
    engine, client, pacer, clock, stand_in
):
    settings = Settings(_env_file=None, **SLACK)
    live = so.subscription(1, customer_id="cus_00000001", created=ts(2026, 2, 1))
    receive(
        engine, so.event(1, type="customer.subscription.created", obj=live, created=ts(2026, 2, 1))
    )
    assert work(engine, settings) == 1
    assert ledger(engine, "cus_00000001") == [("new", at(2026, 2, 1), Decimal(2000))]
    stand_in.add(
        "subscriptions",
        {**live, "status": "canceled", "canceled_at": ts(2026, 2, 20), "ended_at": ts(2026, 2, 20)},
    )

    backfill(engine, client, pacer, clock).run(only=["subscriptions"])

    assert ledger(engine, "cus_00000001") == [
        ("new", at(2026, 2, 1), Decimal(2000)),
        ("churn", at(2026, 2, 20), Decimal(-2000)),
    ]
    assert ledger_agrees_with_store(engine) == {}
    assert outbox_rows(engine) == [] and alert_rows(engine) == []


def test_csv_import_feeds_the_ledger(engine):
    result = import_csv(
        engine=engine,
        kind="subscriptions",
        stream=io.StringIO(SUBSCRIPTIONS),
        exported_at=at(2026, 2, 1, 9, 30),
        now=at(2026, 2, 2),
    )

    assert result.ledger_lines == 3
    assert ledger(engine, "cus_A1") == [("new", at(2024, 1, 31, 12), Decimal(3 * 123450))]
    yearly = from_ledger_units(to_ledger_units(Decimal(5000) / 12))  # ¥5,000 a year
    assert ledger(engine, "cus_B2") == [
        ("new", at(2024, 2, 1, 8, 15), yearly),
        ("churn", at(2025, 6, 1, 10), -yearly),  # the cancellation request (REVENUE_CHURN_AT)
    ]
    assert outbox_rows(engine) == []

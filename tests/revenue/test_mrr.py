"""Stripe's own worked MRR numbers, through the store, the ledger and the report."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from bot.settings import Settings
from handlers.revenue.ledger import record_all_customers_mrr
from handlers.revenue.report import report_as_json, revenue_report
from storage.db import session_scope
from storage.models.billing import Subscription, SubscriptionItem
from storage.money import format_money
from storage.mrr import MrrPolicy, subscription_mrr
from storage.revenue import current_mrr_by_currency, customer_mrr_from_store
from tests.revenue.factories import T0, item, put_subscription

NOW = T0 + timedelta(days=10)


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def report_now(engine, **values):
    with session_scope(engine) as session:
        record_all_customers_mrr(session, at=T0 + timedelta(days=1), event_id="backfill:test")
    with session_scope(engine) as session:
        return revenue_report(session, period=None, now=NOW, settings=settings(**values))


def test_monthly_and_yearly_plans(engine):
    with session_scope(engine) as session:
        for n in range(100):
            put_subscription(session, f"sub_a{n}", customer_id=f"cus_a{n}", items=[item(10_000)])
        for n in range(50):
            put_subscription(
                session, f"sub_b{n}", customer_id=f"cus_b{n}", items=[item(60_000, interval="year")]
            )
    report = report_now(engine)
    assert format_money(report.mrr, "usd") == "$12,500.00"
    assert format_money(report.arpu, "usd") == "$83.33"
    assert report.active_customers == 150
    data = report_as_json(report)
    assert (data["mrr"], data["arpu"], data["active_customers"]) == (1_250_000, 8_333, 150)
    assert data["movements"]["new"] == {"amount": 1_250_000, "count": 150}


def test_every_billing_interval(engine):
    with session_scope(engine) as session:
        put_subscription(
            session, "sub_q", customer_id="cus_q", items=[item(9_000, interval_count=3, quantity=2)]
        )
        put_subscription(
            session,
            "sub_2y",
            customer_id="cus_2y",
            items=[item(120_000, interval="year", interval_count=2)],
        )
        put_subscription(
            session, "sub_w", customer_id="cus_w", items=[item(1_000, interval="week")]
        )
        put_subscription(session, "sub_d", customer_id="cus_d", items=[item(100, interval="day")])
    report = report_now(engine)
    assert report.mrr == Decimal(18_375)
    assert format_money(report.mrr, "usd") == "$183.75"
    with session_scope(engine) as session:
        # The weekly plan alone is not a whole number of cents: kept exact, not rounded early.
        weekly = customer_mrr_from_store(session, customer_id="cus_w")["usd"].mrr
        assert weekly * 3 == 13_000
        assert current_mrr_by_currency(session)["usd"] == Decimal(18_375)


def test_only_active_and_past_due_count(engine):
    statuses = [
        "active",
        "past_due",
        "trialing",
        "unpaid",
        "canceled",
        "incomplete",
        "incomplete_expired",
        "paused",
    ]
    with session_scope(engine) as session:
        for status in statuses:
            put_subscription(
                session,
                f"sub_{status}",
                customer_id=f"cus_{status}",
                items=[item(10_000)],
                status=status,
            )
    report = report_now(engine)
    assert report.mrr == Decimal(20_000)
    assert report.active_customers == 2
    assert report_as_json(report)["mrr"] == 20_000


def _mrr(sub: dict, items: list[dict], policy: MrrPolicy | None = None) -> Decimal:
    subscription = Subscription(id="sub", customer_id="cus", currency="usd", version_at=T0, **sub)
    rows = [
        SubscriptionItem(id=f"si{n}", subscription_id="sub", currency="usd", **spec)
        for n, spec in enumerate(items)
    ]
    return subscription_mrr(subscription, rows, policy=policy or MrrPolicy())


TIERS = [
    {"up_to": 5, "unit_amount": 1_000, "flat_amount": None},
    {"up_to": 10, "unit_amount": 800, "flat_amount": 500},
    {"up_to": None, "unit_amount": 500, "flat_amount": None},
]


def test_tiered_graduated_and_volume():
    graduated = item(
        None, quantity=12, billing_scheme="tiered", tiers_mode="graduated", tiers=TIERS
    )
    volume = item(None, quantity=12, billing_scheme="tiered", tiers_mode="volume", tiers=TIERS)
    # Graduated: 5 × $10 + (5 × $8 + $5 flat) + 2 × $5 = $105.
    assert _mrr({"status": "active"}, [graduated]) == 10_500
    # Volume: all 12 units at the third tier's price.
    assert _mrr({"status": "active"}, [volume]) == 6_000
    # Volume inside the second tier takes its flat fee too: 7 × $8 + $5.
    assert _mrr({"status": "active"}, [{**volume, "quantity": 7}]) == 6_100
    # A yearly graduated price is normalised after the tiers are applied.
    assert _mrr({"status": "active"}, [{**graduated, "interval": "year"}]) == 875


def test_forever_discounts_only_by_default():
    forever = {"duration": "forever", "percent_off": "25", "amount_off": None}
    once = {"duration": "once", "percent_off": None, "amount_off": 1_000, "currency": "usd"}
    base = [item(10_000)]
    assert _mrr({"status": "active", "discounts": [forever]}, base) == 7_500
    assert _mrr({"status": "active", "discounts": [once]}, base) == 10_000
    both = MrrPolicy(discount_durations=frozenset({"forever", "once"}))
    assert _mrr({"status": "active", "discounts": [forever, once]}, base, both) == 6_500
    # A yearly amount_off is a twelfth of itself a month.
    yearly = {"duration": "forever", "percent_off": None, "amount_off": 12_000}
    assert (
        _mrr({"status": "active", "discounts": [yearly]}, [item(120_000, interval="year")]) == 9_000
    )


def test_trials_metered_free_and_requested_cancellations():
    assert _mrr({"status": "trialing"}, [item(10_000)]) == 0
    assert _mrr({"status": "active"}, [item(10_000, usage_type="metered")]) == 0
    assert _mrr({"status": "active"}, [item(0)]) == 0
    assert _mrr({"status": "active"}, [item(10_000), item(500, usage_type="metered")]) == 10_000
    scheduled = {"status": "active", "cancel_at_period_end": True}
    assert _mrr(scheduled, [item(10_000)]) == 0
    assert _mrr(scheduled, [item(10_000)], MrrPolicy(churn_at="period_end")) == 10_000
    dated = {"status": "active", "cancel_at": T0 + timedelta(days=30)}
    assert _mrr(dated, [item(10_000)]) == 0
    # Decimal unit prices (fractions of a cent) stay exact.
    assert _mrr(
        {"status": "active"}, [item(None, unit_amount_decimal="0.5", quantity=3)]
    ) == Decimal("1.5")

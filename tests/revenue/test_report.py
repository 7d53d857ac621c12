"""Reports for a known month: churn rate, NRR, LTV, FX, and the `billbot revenue` command."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from bot.cli import main
from bot.settings import Settings
from handlers.revenue.fx import FxRates, FxRatesError, load_fx_rates
from handlers.revenue.headline import mrr_headline
from handlers.revenue.ledger import record_customer_mrr
from handlers.revenue.report import (
    FORMULAS,
    NO_CHURN_NOTE,
    InvalidPeriod,
    report_as_json,
    resolve_period,
    revenue_report,
)
from handlers.revenue.text import format_report_text
from storage.db import session_scope
from tests.revenue.factories import item, put_subscription, set_quantity, update_subscription

FEB = datetime(2025, 2, 1, tzinfo=UTC)
MAR = datetime(2025, 3, 1, tzinfo=UTC)
APR = datetime(2025, 4, 1, tzinfo=UTC)
NOW = datetime(2025, 4, 10, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
JSON_KEYS = {
    "currency",
    "mrr",
    "arpu",
    "ltv",
    "active_customers",
    "movements",
    "churn_rate",
    "nrr",
    "period",
}


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def record(session, customer_id: str, at: datetime) -> None:
    record_customer_mrr(
        session, customer_id=customer_id, at=at, event_id=f"evt_{customer_id}_{at:%m%d}"
    )


def build_known_month(engine) -> None:
    """Ten $100 customers in February; in March one churns, one expands $50, one contracts $20,
    one new customer arrives and expands $10 the same month."""
    with session_scope(engine) as session:
        for n in range(10):
            put_subscription(
                session, f"sub_{n}", customer_id=f"cus_{n}", items=[item(1_000, quantity=10)]
            )
            record(session, f"cus_{n}", FEB + n * DAY)
        update_subscription(session, "sub_0", status="canceled")
        record(session, "cus_0", MAR + 2 * DAY)
        set_quantity(session, "sub_1", 15)
        record(session, "cus_1", MAR + 4 * DAY)
        set_quantity(session, "sub_2", 8)
        record(session, "cus_2", MAR + 6 * DAY)
        put_subscription(session, "sub_10", customer_id="cus_10", items=[item(1_000, quantity=10)])
        record(session, "cus_10", MAR + 9 * DAY)
        set_quantity(session, "sub_10", 11)
        record(session, "cus_10", MAR + 11 * DAY)


def test_known_month(engine):
    build_known_month(engine)
    with session_scope(engine) as session:
        report = revenue_report(session, period="2025-03", now=NOW, settings=settings())
    assert (report.start_mrr, report.mrr) == (Decimal(100_000), Decimal(104_000))
    assert (report.start_customers, report.active_customers) == (10, 10)
    assert (report.new_customers, report.churned_customers) == (1, 1)
    assert report.churn_rate == Decimal(1) / Decimal(11)
    assert report.arpu == Decimal(10_400)
    assert report.ltv == Decimal(114_400)  # $104 ÷ (1/11)
    assert report.nrr == Decimal("0.93")  # the new customer's expansion is not retention
    assert report.fx == 0 and report.complete
    data = report_as_json(report)
    assert set(data) == JSON_KEYS
    assert data == {
        "currency": "usd",
        "mrr": 104_000,
        "arpu": 10_400,
        "ltv": 114_400,
        "active_customers": 10,
        "movements": {
            "new": {"amount": 10_000, "count": 1},
            "expansion": {"amount": 6_000, "count": 2},
            "contraction": {"amount": -2_000, "count": 1},
            "churn": {"amount": -10_000, "count": 1},
            "reactivation": {"amount": 0, "count": 0},
        },
        "churn_rate": 0.0909,
        "nrr": 0.93,
        "period": "2025-03",
    }
    assert [(m.customer_id, m.kind) for m in report.top_movements][:3] == [
        ("cus_0", "churn"),
        ("cus_10", "new"),
        ("cus_1", "expansion"),
    ]


def test_past_months_do_not_change_when_the_store_moves_on(engine):
    build_known_month(engine)
    with session_scope(engine) as session:
        before = report_as_json(
            revenue_report(session, period="2025-03", now=NOW, settings=settings())
        )
        update_subscription(session, "sub_3", status="canceled")
        record(session, "cus_3", APR + DAY)
    with session_scope(engine) as session:
        assert (
            report_as_json(revenue_report(session, period="2025-03", now=NOW, settings=settings()))
            == before
        )
        april = revenue_report(session, period="this month", now=NOW, settings=settings())
        assert april.period == "2025-04" and not april.complete
        assert april.movements["churn"].count == 1 and april.mrr == Decimal(94_000)


def test_no_churn_means_ltv_undefined_and_said(engine):
    with session_scope(engine) as session:
        put_subscription(session, "sub_1", customer_id="cus_1", items=[item(5_000)])
        record(session, "cus_1", MAR + DAY)
        report = revenue_report(session, period="2025-03", now=NOW, settings=settings())
    assert report.churn_rate == 0 and report.ltv is None and NO_CHURN_NOTE in report.notes
    assert report.nrr is None  # nothing at the start of the month
    assert report_as_json(report)["ltv"] is None
    text = format_report_text(report)
    assert "undefined" in text and NO_CHURN_NOTE in text and FORMULAS["ltv"] in text


def test_missing_rate_is_reported_and_excluded(engine, tmp_path):
    with session_scope(engine) as session:
        put_subscription(session, "sub_us", customer_id="cus_us", items=[item(10_000)])
        put_subscription(
            session, "sub_eu", customer_id="cus_eu", items=[item(10_000)], currency="eur"
        )
        put_subscription(
            session, "sub_jp", customer_id="cus_jp", items=[item(10_000)], currency="jpy"
        )
        for customer in ("cus_us", "cus_eu", "cus_jp"):
            record(session, customer, FEB)
        without = revenue_report(
            session, period="2025-03", now=NOW, settings=settings(fx_rates="jpy=0.0067")
        )
        assert without.excluded_currencies == ("eur",)
        assert without.mrr == Decimal(10_000) + Decimal(6_700)  # ¥10,000 is $67.00
        assert without.active_customers == 2
        assert any("EUR" in note for note in without.notes)
        rates = tmp_path / "rates.json"
        rates.write_text(json.dumps({"2025-03-01": {"eur": "1.10"}, "2025-03-15": {"eur": "1.20"}}))
        dated = revenue_report(
            session,
            period="2025-03",
            now=NOW,
            settings=settings(fx_rates="jpy=0.0067", fx_rates_file=rates),
        )
    assert dated.excluded_currencies == ()
    assert dated.start_mrr == Decimal(10_000) + Decimal(6_700) + Decimal(11_000)
    assert dated.mrr == Decimal(10_000) + Decimal(6_700) + Decimal(12_000)
    # The euro rising is its own line, never a movement.
    assert dated.fx == Decimal(1_000)
    assert all(total.amount == 0 for total in dated.movements.values())


def test_fx_rates_file_errors_are_clear(tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"eur": "a lot"}')
    with pytest.raises(FxRatesError, match="eur"):
        load_fx_rates(settings(fx_rates_file=broken))
    rates = FxRates("usd", {"eur": Decimal("1.08")})
    assert rates.rate("usd", NOW) == 1 and rates.rate("gbp", NOW) is None
    assert rates.convert(Decimal(1_000), "eur", NOW) == Decimal(1_080)


def test_periods():
    assert resolve_period(None, now=NOW)[:3] == ("2025-04", APR, NOW)
    assert resolve_period("last month", now=NOW) == ("2025-03", MAR, APR, True)
    assert resolve_period(" 2024-12 ", now=NOW)[0] == "2024-12"
    for bad in ("2025-13", "March", "2025-3", "'; drop table mrr_movement; --", "2025-05"):
        with pytest.raises(InvalidPeriod):
            resolve_period(bad, now=NOW)


def test_cli_json_and_table(engine, database_url, monkeypatch, capsys):
    build_known_month(engine)
    with session_scope(engine) as session:
        put_subscription(
            session, "sub_gb", customer_id="cus_gb", items=[item(10_000)], currency="gbp"
        )
        record(session, "cus_gb", FEB)
    monkeypatch.setenv("DATABASE_URL", database_url)
    assert main(["revenue", "--month", "2025-03", "--json"]) == 0
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert set(data) == JSON_KEYS and data["mrr"] == 104_000 and data["nrr"] == 0.93
    assert "GBP" in err
    monkeypatch.setenv("FX_RATES", "gbp=1.25")
    assert main(["revenue", "--month", "2025-03"]) == 0
    out, _ = capsys.readouterr()
    assert "$1,165.00" in out  # $1,040 + £100 at 1.25
    assert "Churn rate" in out and "8.33%" in out and "= 1 ÷ (11 + 1)" in out
    assert main(["revenue", "--month", "next year"]) == 2
    assert "not a month" in capsys.readouterr().err


def test_headline_agrees_with_the_report_for_now(engine):
    build_known_month(engine)
    with session_scope(engine) as session:
        put_subscription(
            session, "sub_gb", customer_id="cus_gb", items=[item(10_000)], currency="gbp"
        )
        record(session, "cus_gb", FEB)
        headline = mrr_headline(session, now=NOW, settings=settings())
        report = revenue_report(session, period=None, now=NOW, settings=settings())
    assert (headline.mrr, headline.active_customers) == (report.mrr, report.active_customers)
    assert headline.mrr == Decimal(104_000) and headline.excluded_currencies == ("gbp",)

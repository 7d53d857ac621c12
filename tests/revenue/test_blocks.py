"""The revenue summary's Block Kit, checked with plain asserts."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

from handlers.revenue.blocks import UNDEFINED, chart_alt_text, revenue_summary_blocks
from handlers.revenue.report import (
    FORMULAS,
    NO_CHURN_NOTE,
    MovementTotal,
    RevenueReport,
    TopMovement,
)

KINDS = ("new", "expansion", "contraction", "churn", "reactivation")


def report(**changes) -> RevenueReport:
    values = dict(
        period="2025-03",
        start=datetime(2025, 3, 1, tzinfo=UTC),
        end=datetime(2025, 4, 1, tzinfo=UTC),
        complete=True,
        currency="usd",
        mrr=Decimal(104_000),
        start_mrr=Decimal(100_000),
        active_customers=10,
        start_customers=10,
        arpu=Decimal(10_400),
        movements={kind: MovementTotal() for kind in KINDS}
        | {"churn": MovementTotal(Decimal(-10_000), 1)},
        paused=MovementTotal(),
        resumed=MovementTotal(),
        fx=Decimal(0),
        new_customers=1,
        churned_customers=1,
        churn_rate=Decimal(1) / 11,
        ltv=Decimal(114_400),
        nrr=Decimal("0.93"),
        top_movements=[
            TopMovement(
                customer_id="cus_0",
                customer_name="<!channel> & Co",
                kind="churn",
                amount=Decimal(-10_000),
                original_amount=Decimal(-10_000),
                currency="usd",
                occurred_at=datetime(2025, 3, 3, tzinfo=UTC),
                event_id="evt_1",
            )
        ],
    )
    values.update(changes)
    return RevenueReport(**values)


def texts(blocks: list[dict]) -> str:
    return json.dumps(blocks, ensure_ascii=False)


def test_summary_shows_figures_formulas_and_escapes_names():
    blocks = revenue_summary_blocks(report())
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Revenue · March 2025"},
    }
    fields = [field["text"] for field in blocks[2]["fields"]]
    assert fields == [
        "*MRR*\n$1,040.00",
        "*Active customers*\n10",
        "*ARPU*\n$104.00",
        "*Churn rate*\n9.1%",
        "*LTV*\n$1,144.00",
        "*NRR*\n93.0%",
    ]
    body = texts(blocks)
    assert "Churn: -$100.00 (1)" in body
    assert FORMULAS["nrr"] in body and FORMULAS["churn_rate"] in body
    assert "&lt;!channel&gt; &amp; Co" in body and "<!channel>" not in body
    assert "Mar 1 to Mar 31, 2025" in body
    assert all(block["type"] in ("header", "section", "context") for block in blocks)
    assert len(blocks) <= 50


def test_running_month_undefined_figures_and_notes():
    blocks = revenue_summary_blocks(
        report(
            complete=False,
            end=datetime(2025, 3, 15, 12, tzinfo=UTC),
            ltv=None,
            churn_rate=Decimal(0),
            nrr=None,
            top_movements=[],
            fx=Decimal(1_000),
            notes=(NO_CHURN_NOTE, "No exchange rate to USD for GBP: left out of every figure."),
        )
    )
    body = texts(blocks)
    assert f"*LTV*\\n{UNDEFINED}" in body and f"*NRR*\\n{UNDEFINED}" in body
    assert "<!date^1742040000^" in body
    assert NO_CHURN_NOTE in body and "GBP" in body
    assert "Exchange rates (not a movement): +$10.00" in body
    assert "Largest movements" not in body
    assert chart_alt_text(report()) == (
        "Line chart of MRR in USD at the end of each of the last 12 months; now $1,040.00."
    )

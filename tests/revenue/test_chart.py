"""The MRR chart renders headless to a PNG with money on its axis."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from bot.settings import Settings
from handlers.revenue.chart import axis_money, mrr_chart_png, point_label
from handlers.revenue.ledger import record_customer_mrr
from handlers.revenue.report import mrr_series
from storage.db import session_scope
from tests.revenue.factories import item, put_subscription, set_quantity

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOW = datetime(2025, 12, 15, 9, 30, tzinfo=UTC)


def png_size(png: bytes) -> tuple[int, int]:
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


def test_axis_labels_are_money():
    assert axis_money(1_250_000, "usd") == "$12,500"
    assert axis_money(1_250_050, "usd") == "$12,500.50"
    assert axis_money(500_000, "jpy") == "¥500,000"
    assert axis_money(0, "eur") == "€0"
    assert point_label(datetime(2025, 3, 1, tzinfo=UTC)) == "Feb 2025"
    assert point_label(datetime(2025, 1, 1, tzinfo=UTC)) == "Dec 2024"
    assert point_label(NOW) == "Dec 15"


def test_twelve_months_from_the_ledger_render(engine, tmp_path):
    with session_scope(engine) as session:
        for n in range(12):
            month = datetime(2025, n + 1, 1, tzinfo=UTC)
            put_subscription(
                session, f"sub_{n}", customer_id=f"cus_{n}", items=[item(4_900, quantity=n + 1)]
            )
            record_customer_mrr(
                session, customer_id=f"cus_{n}", at=month + timedelta(days=3), event_id=f"evt_{n}"
            )
        set_quantity(session, "sub_0", 40)
        record_customer_mrr(
            session, customer_id="cus_0", at=NOW - timedelta(days=1), event_id="evt_up"
        )
        series = mrr_series(session, now=NOW, settings=Settings(_env_file=None))
    assert len(series.points) == 12 and series.points[-1][0] == NOW
    # The ends of January to November, then now.
    assert series.points[0] == (datetime(2025, 2, 1, tzinfo=UTC), Decimal(4_900))
    assert series.points[-2] == (datetime(2025, 12, 1, tzinfo=UTC), Decimal(4_900 * 66))
    values = [value for _, value in series.points]
    assert values == sorted(values)
    png = mrr_chart_png(series.points, series.currency)
    assert png.startswith(PNG_MAGIC)
    assert png_size(png) == (880, 440)
    path = tmp_path / "mrr.png"
    path.write_bytes(png)
    if os.environ.get("BILLBOT_KEEP_CHART"):  # to look at it: BILLBOT_KEEP_CHART=/tmp/mrr.png
        path.rename(os.environ["BILLBOT_KEEP_CHART"])


def test_empty_history_still_renders():
    points = [(datetime(2025, month, 1, tzinfo=UTC), Decimal(0)) for month in range(2, 13)] + [
        (NOW, Decimal(0))
    ]
    png = mrr_chart_png(points, "eur", footnote="No exchange rate for GBP: left out.")
    assert png.startswith(PNG_MAGIC)
    if os.environ.get("BILLBOT_KEEP_CHART"):
        (Path(os.environ["BILLBOT_KEEP_CHART"]).parent / "mrr_empty.png").write_bytes(png)

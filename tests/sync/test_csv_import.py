"""CSV import of Dashboard exports: each kind, the version rule, and errors that import nothing."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from handlers.sync.csv_import import CsvImportError, import_csv, read_objects
from storage.db import read_scope, session_scope
from storage.models import Customer, Invoice, Subscription

EXPORTED = datetime(2026, 2, 1, 9, 30, 15, tzinfo=UTC)

CUSTOMERS = """\ufeffid,Description,Email,Name,Created (UTC),Currency,Delinquent,Card ID
cus_A1,VIP,ada@example.com,Ada Lovelace,2024-01-31 12:00,usd,false,card_1
cus_B2,,bob@example.com,Bob,2024-02-01 08:15:00,eur,true,
"""

SUBSCRIPTIONS = """id,Customer ID,Customer Email,Plan,Product,Quantity,Currency,Interval,Amount,Status,Created (UTC),Start Date (UTC),Current Period Start (UTC),Current Period End (UTC),Trial Start (UTC),Trial End (UTC),Canceled At (UTC),Cancel At Period End,Ended At (UTC)
sub_1,cus_A1,ada@example.com,price_pro,prod_pro,3,usd,month,"1,234.50",active,2024-01-31 12:00,2024-01-31 12:00,2026-01-31 12:00,2026-02-28 12:00,,,,false,
sub_2,cus_B2,bob@example.com,price_jp,prod_jp,1,jpy,year,5000,Canceled,2024-02-01 08:15,2024-02-01 08:15,2025-02-01 08:15,2026-02-01 08:15,,,2025-06-01 10:00,false,2026-02-01 08:15
"""

INVOICES = """id,Amount Due,Amount Paid,Amount Remaining,Attempt Count,Billing Reason,Currency,Customer,Customer Email,Date (UTC),Due Date (UTC),Number,Paid,Status,Subscription,Total
in_1,37.04,37.04,0.00,1,subscription_cycle,usd,cus_A1,ada@example.com,2026-01-31 12:00,,ABC-0001,true,paid,sub_1,37.04
in_2,12.00,0.00,12.00,2,manual,usd,cus_B2,bob@example.com,01/15/2026 10:00,01/30/2026,ABC-0002,false,open,,12.00
"""


def run(engine, recorder, kind, text, exported_at=EXPORTED):
    return import_csv(
        engine=engine,
        kind=kind,
        stream=io.StringIO(text),
        exported_at=exported_at,
        apply_object=recorder,
    )


def test_customers_export(engine, recorder):
    result = run(engine, recorder, "customers", CUSTOMERS)
    assert (result.rows, result.applied) == (2, 2)
    with read_scope(engine) as session:
        ada = session.get(Customer, "cus_A1")
        assert (ada.email, ada.name) == ("ada@example.com", "Ada Lovelace")
        assert ada.created == datetime(2024, 1, 31, 12, 0, tzinfo=UTC)
        assert ada.version_at == datetime(2026, 2, 1, 9, 30, 14, tzinfo=UTC)
        assert session.get(Customer, "cus_B2").raw["delinquent"] is True


def test_subscriptions_export_becomes_api_shaped_objects():
    sub1, sub2 = read_objects("subscriptions", io.StringIO(SUBSCRIPTIONS))
    item = sub1["items"]["data"][0]
    assert (sub1["customer"], sub1["status"], sub1["currency"]) == ("cus_A1", "active", "usd")
    assert item["price"]["unit_amount"] == 123450 and item["quantity"] == 3
    assert item["price"]["recurring"]["interval"] == "month" and item["price"]["id"] == "price_pro"
    assert item["current_period_end"] == int(datetime(2026, 2, 28, 12, tzinfo=UTC).timestamp())
    jp_item = sub2["items"]["data"][0]
    assert jp_item["price"]["unit_amount"] == 5000  # zero-decimal currency
    assert sub2["status"] == "canceled" and sub2["canceled_at"] == int(
        datetime(2025, 6, 1, 10, tzinfo=UTC).timestamp()
    )


def test_subscriptions_export_is_stored(sqlite_engine, recorder):
    run(sqlite_engine, recorder, "subscriptions", SUBSCRIPTIONS)
    with read_scope(sqlite_engine) as session:
        statuses = {s.id: s.status for s in session.exec(select(Subscription))}
    assert statuses == {"sub_1": "active", "sub_2": "canceled"}


def test_invoices_export(sqlite_engine, recorder):
    in1, in2 = read_objects("invoices", io.StringIO(INVOICES))
    assert (in1["amount_due"], in1["amount_paid"], in1["amount_remaining"]) == (3704, 3704, 0)
    assert in1["parent"]["subscription_details"]["subscription"] == "sub_1"
    assert in2["created"] == int(datetime(2026, 1, 15, 10, tzinfo=UTC).timestamp())
    assert in2["status"] == "open" and in2["parent"] is None and in2["attempt_count"] == 2
    run(sqlite_engine, recorder, "invoices", INVOICES)
    with read_scope(sqlite_engine) as session:
        assert session.get(Invoice, "in_2").amount_paid == 0


def test_webhook_data_newer_than_the_export_wins(sqlite_engine, recorder):
    with session_scope(sqlite_engine) as session:
        session.add(
            Customer(id="cus_A1", email="new@example.com", version_at=EXPORTED + timedelta(hours=1))
        )
    result = run(sqlite_engine, recorder, "customers", CUSTOMERS)
    assert result.applied == 1
    with read_scope(sqlite_engine) as session:
        assert session.get(Customer, "cus_A1").email == "new@example.com"


def test_a_bad_file_imports_nothing_and_names_every_bad_row(sqlite_engine, recorder):
    bad = (
        CUSTOMERS
        + "cus_C3,,c@example.com,C,yesterday,usd,false,\ncus_D4,,d@example.com,D,2024-13-45,usd,false,\n"
    )
    with pytest.raises(CsvImportError) as raised:
        run(sqlite_engine, recorder, "customers", bad)
    message = str(raised.value)
    assert "line 4: Created (UTC): 'yesterday' is not a date" in message
    assert "line 5: Created (UTC): '2024-13-45'" in message
    with read_scope(sqlite_engine) as session:
        assert session.exec(select(Customer)).all() == []


@pytest.mark.parametrize(
    ("kind", "text", "expected"),
    [
        (
            "subscriptions",
            CUSTOMERS,
            "does not look like a Stripe subscriptions export: missing column 'Customer ID'",
        ),
        (
            "invoices",
            "id,Customer,Currency,Amount Due\nin_1,cus_1,usd,12.345\n",
            "'12.345' has more decimals than USD",
        ),
        (
            "invoices",
            "id,Customer,Currency,Amount Due\nin_1,cus_1,usd,ten\n",
            "Amount Due: 'ten' is not an amount",
        ),
        (
            "subscriptions",
            "id,Customer ID,Status,Currency\nsub_1,cus_1,sleeping,usd\n",
            "'sleeping' is not one of",
        ),
        (
            "subscriptions",
            "id,Customer ID,Status,Currency,Quantity\nsub_1,cus_1,active,usd,two\n",
            "Quantity: 'two'",
        ),
        ("payouts", "id\n", "unknown kind 'payouts'"),
    ],
)
def test_clear_errors(kind, text, expected):
    with pytest.raises(CsvImportError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        read_objects(kind, io.StringIO(text))

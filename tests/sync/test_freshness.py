"""`billbot lookup` says how fresh each record is after a backfill: the last event or sync."""

from __future__ import annotations

from datetime import timedelta

from handlers.sync.backfill import Backfill, version_for_read
from storage.customer_summary import lookup_customers
from storage.db import read_scope
from tests.fakes import stripe_objects as so


def test_each_subscription_and_invoice_says_when_it_was_last_synced(
    engine, client, pacer, clock, stand_in
):
    stand_in.add("customers", so.customer(1, created=so.EPOCH))
    stand_in.add("subscriptions", so.subscription(1, customer_id="cus_00000001", created=so.EPOCH))
    stand_in.add(
        "invoices",
        so.invoice(1, customer_id="cus_00000001", created=so.EPOCH + 86400, status="open"),
    )
    read = version_for_read(clock.now())

    Backfill(engine=engine, client=client, pacer=pacer, now=clock.now).run(
        only=["customers", "subscriptions", "invoices"]
    )

    with read_scope(engine) as session:
        [summary] = lookup_customers(
            session=session, text="cus_00000001", now=clock.now() + timedelta(days=1)
        ).matches
    [sub], [invoice] = summary.subscriptions, summary.open_invoices
    assert sub.as_of is not None and sub.as_of >= read
    assert invoice.as_of is not None and invoice.as_of >= read
    assert summary.as_of >= max(sub.as_of, invoice.as_of)

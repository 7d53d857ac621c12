"""`invoice_contact`: who an invoice names as its customer, in either API shape."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handlers.stripe.contacts import CONTACT_CHARS, invoice_contact
from handlers.stripe.convert import Source
from handlers.stripe.invoices import invoice_values
from storage.models import Invoice
from tests import factories as f


def stored(obj: dict) -> Invoice:
    """The row the invoice handler would store for `obj` (its `raw` included)."""
    source = Source(at=datetime(2026, 1, 1, tzinfo=UTC), event_id="evt_1")
    return Invoice(**invoice_values(obj, source))


@pytest.mark.parametrize("api_version", f.API_VERSIONS)
def test_name_and_email_copied_onto_the_invoice(api_version):
    obj = f.invoice(api_version=api_version, customer="cus_a", subscription="sub_a")
    obj.update(customer_name="Acme Inc", customer_email="billing@acme.test")
    assert invoice_contact(stored(obj)) == ("Acme Inc", "billing@acme.test")


def test_missing_blank_or_odd_values_are_none():
    obj = f.invoice(customer="cus_a")  # Stripe sends customer_email null, no customer_name
    assert invoice_contact(stored(obj)) == (None, None)
    obj.update(customer_name="   ", customer_email=42)
    assert invoice_contact(stored(obj)) == (None, None)
    assert invoice_contact(Invoice(id="in_x", currency="usd")) == (None, None)  # raw {}


def test_an_expanded_customer_fills_what_the_copies_leave_out():
    customer = {"id": "cus_a", "object": "customer", "name": "Acme Inc", "email": "ops@acme.test"}
    obj = f.invoice(customer=customer)
    obj["customer_email"] = " billing@acme.test "
    assert invoice_contact(stored(obj)) == ("Acme Inc", "billing@acme.test")


def test_long_values_are_cut_to_the_customer_columns():
    obj = f.invoice(customer="cus_a")
    obj["customer_name"] = "N" * (CONTACT_CHARS + 50)
    name, _ = invoice_contact(stored(obj))
    assert name == "N" * CONTACT_CHARS

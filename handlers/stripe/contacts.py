"""Who a stored invoice names as its customer, read from the invoice's raw Stripe object.

An invoice copies its customer's name and email (`customer_name`, `customer_email`) when it
is finalized. billbot does not keep them in columns: for a customer it has a row for, the
customer row is the current truth. They matter when there is no customer row (a customer
created before billbot was installed and not backfilled): then the invoice is the only
place that says who the customer is. This is the one place past the webhook handlers that
reads those fields, so the payload shape stays inside `handlers/stripe/`.
"""

from __future__ import annotations

from typing import Any

from storage.models.billing import Invoice

CONTACT_CHARS = 512  # the customer table's name and email columns


def invoice_contact(invoice: Invoice) -> tuple[str | None, str | None]:
    """(name, email) as the invoice gives them; None for what it leaves out. An expanded
    `customer` object (an API fetch with `expand[]`) fills what the copies leave out."""
    raw = invoice.raw if isinstance(invoice.raw, dict) else {}
    customer = raw.get("customer") if isinstance(raw.get("customer"), dict) else {}
    name = _text(raw.get("customer_name")) or _text(customer.get("name"))
    email = _text(raw.get("customer_email")) or _text(customer.get("email"))
    return name, email


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return value.strip()[:CONTACT_CHARS]

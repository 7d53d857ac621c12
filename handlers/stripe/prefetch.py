"""What a batch of events will look up besides the rows it upserts, read before it is applied.

Linking an invoice, its payments, charges and refunds (basil's InvoicePayment, refunds that
arrived before their charge) asks the store about rows other than the event's own object.
Asked event by event, each question was a query and a flush of everything pending. The
worker instead collects the ids the batch's payloads name and reads those rows once per
table (`storage.billing.prefetch_reads`); a question the payloads did not foresee still
goes to the database, so this only decides how fast an answer comes, never what it is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from handlers.stripe import shapes
from handlers.stripe.convert import expandable_id
from storage.billing import BatchReads


def upserted_objects(objects: Iterable[dict[str, Any]]) -> list[tuple[str, str]]:
    """(Stripe object type, id) of every row these event objects upsert: each object itself
    and the InvoicePayments an invoice carries expanded (`storage.billing.lock_objects`)."""
    named = []
    for obj in objects:
        named.append(obj)
        if obj.get("object") == "invoice":
            named += shapes.invoice_payments(obj)
    return [
        (obj["object"], obj["id"])
        for obj in named
        if isinstance(obj.get("object"), str) and isinstance(obj.get("id"), str) and obj["id"]
    ]


def batch_reads(objects: Iterable[dict[str, Any]]) -> BatchReads:
    """The ids the link lookups of these event objects will ask about."""
    keys = BatchReads()
    for obj in objects:
        kind = obj.get("object")
        if kind in ("invoice", "charge", "subscription"):  # what an alert's facts name
            keys.facts_customer_ids.add(expandable_id(obj.get("customer")))
        if kind == "invoice":
            keys.facts_subscription_ids.add(shapes.invoice_subscription_id(obj))
        if kind == "charge":
            keys.charge_ids.add(expandable_id(obj))
            if not shapes.charge_invoice(obj)[0]:
                keys.payment_intent_ids.add(expandable_id(obj.get("payment_intent")))
        elif kind == "invoice":
            if shapes.invoice_payment_link(obj) is None:
                keys.invoice_ids.add(expandable_id(obj))
            _add_decline_search(keys, obj)
            for payment in shapes.invoice_payments(obj):
                _add_payment(keys, payment)
        elif kind == "invoice_payment":
            _add_payment(keys, obj)
        elif kind == "refund":
            keys.charge_ids.add(expandable_id(obj.get("charge")))
        elif kind == "subscription":
            keys.customer_ids.add(expandable_id(obj.get("customer")))
    for ids in (
        keys.invoice_ids,
        keys.charge_ids,
        keys.payment_intent_ids,
        keys.customer_ids,
        keys.charges_of_invoices,
        keys.charges_of_customers,
        keys.facts_customer_ids,
        keys.facts_subscription_ids,
    ):
        ids.discard(None)  # type: ignore[arg-type]
    return keys


def _add_decline_search(keys: BatchReads, invoice: dict[str, Any]) -> None:
    """What an invoice alert's decline-reason search reads (`handlers/alerts/searches.py`):
    the invoice's payments, the charges linked to it (by invoice, by its payments' or its
    own payment intent) and its customer's charges (an unlinked failed attempt)."""
    invoice_id = expandable_id(invoice)
    keys.invoice_ids.add(invoice_id)
    keys.charges_of_invoices.add(invoice_id)
    keys.payment_intent_ids.add(expandable_id(invoice.get("payment_intent")))
    keys.charges_of_customers.add(expandable_id(invoice.get("customer")))


def _add_payment(keys: BatchReads, payment: dict[str, Any]) -> None:
    keys.invoice_ids.add(expandable_id(payment.get("invoice")))
    target = shapes.invoice_payment_target(payment)
    keys.charge_ids.add(target.charge_id)
    keys.payment_intent_ids.add(target.payment_intent_id)

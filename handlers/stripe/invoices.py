"""Invoices (`invoice.*`) and, from 2025-03-31.basil on, invoice payments (`invoice_payment.paid`).

Before basil an invoice names its payment intent and charge, and a charge its invoice.
From basil on both links go through InvoicePayment, which may arrive before or after the
invoice and the charge; whichever comes second fills the link, so the stored rows end the
same in both shapes. `invoice.upcoming` is not handled: its object has no id.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from handlers.stripe import shapes
from handlers.stripe.convert import (
    ConversionError,
    Source,
    amount,
    currency,
    expandable_id,
    flag,
    integer,
    optional_amount,
    require_id,
    text,
    timestamp,
)
from handlers.stripe.events import StripeEvent
from handlers.stripe.recording import add_entry, change_for, once_key
from handlers.stripe.registry import Change, handles
from storage.billing import Upserted, get_invoice, upsert_invoice, upsert_invoice_payment
from storage.links import link_invoice_payment, payment_refs_for_invoice
from storage.models import Invoice
from storage.money import format_money
from storage.rows import assign
from storage.versioning import Version

INVOICE_EVENTS = (
    "invoice.created",
    "invoice.finalized",
    "invoice.finalization_failed",
    "invoice.updated",
    "invoice.sent",
    "invoice.paid",
    "invoice.payment_succeeded",
    "invoice.payment_failed",
    "invoice.payment_action_required",
    "invoice.payment_attempt_required",
    "invoice.marked_uncollectible",
    "invoice.voided",
    "invoice.deleted",
    "invoice.overdue",
    "invoice.overpaid",
    "invoice.will_be_due",
)
INVOICE_PAYMENT_EVENTS = ("invoice_payment.paid",)
PAYMENT_FAILED = "invoice.payment_failed"
_LINE_STATUSES = frozenset({"paid", "uncollectible", "void"})  # entering one adds a line


@handles(*INVOICE_EVENTS)
def apply_invoice_event(session: Session, event: StripeEvent) -> list[Change]:
    return apply_invoice(session, event.object, Source.from_event(event))


@handles(*INVOICE_PAYMENT_EVENTS)
def apply_invoice_payment_event(session: Session, event: StripeEvent) -> list[Change]:
    return apply_invoice_payment(session, event.object, Source.from_event(event))


def apply_invoice(session: Session, obj: dict[str, Any], source: Source) -> list[Change]:
    values = invoice_values(obj, source)
    version = Version(
        at=source.at,
        event_id=source.event_id,
        state=values["status"],
        progress=values.get("attempt_count", 0),
    )
    result = upsert_invoice(session=session, values=values, version=version)
    changes = [change_for("invoice", result, source, customer_id=result.row.customer_id)]
    if not result.applied:
        return changes
    if (
        "payment_intent_id" not in values
        and result.row.payment_intent_id is None
        and result.row.status != "draft"
    ):
        _fill_payment_from_invoice_payments(session, result.row)
    _record_invoice_timeline(session, source, result)
    for payment in shapes.invoice_payments(obj):
        changes += apply_invoice_payment(session, payment, source)
    return changes


def invoice_values(obj: dict[str, Any], source: Source) -> dict[str, Any]:
    invoice_id = require_id(obj)
    deleted = source.event_type == "invoice.deleted" or obj.get("deleted") is True
    if deleted and "currency" not in obj:
        return {"id": invoice_id, "status": "deleted", "livemode": source.livemode_of(obj)}
    error = (
        obj.get("last_finalization_error")
        if isinstance(obj.get("last_finalization_error"), dict)
        else {}
    )
    transitions = (
        obj.get("status_transitions") if isinstance(obj.get("status_transitions"), dict) else {}
    )
    values = {
        "id": invoice_id,
        "livemode": source.livemode_of(obj),
        "raw": obj,
        "customer_id": expandable_id(obj.get("customer")),
        "subscription_id": shapes.invoice_subscription_id(obj),
        "status": "deleted" if deleted else text(obj.get("status"), 32),
        "number": text(obj.get("number"), 255),
        "currency": currency(obj.get("currency"), field="invoice.currency"),
        "billing_reason": text(obj.get("billing_reason"), 64),
        "collection_method": text(obj.get("collection_method"), 32),
        "amount_due": amount(obj.get("amount_due"), field="invoice.amount_due"),
        "amount_paid": amount(obj.get("amount_paid"), field="invoice.amount_paid"),
        "amount_remaining": amount(obj.get("amount_remaining"), field="invoice.amount_remaining"),
        "total": amount(obj.get("total"), field="invoice.total"),
        "attempt_count": integer(obj.get("attempt_count"), 0),
        "attempted": flag(obj.get("attempted")),
        "next_payment_attempt": timestamp(obj.get("next_payment_attempt")),
        "due_date": timestamp(obj.get("due_date")),
        "paid_at": timestamp(transitions.get("paid_at")),
        "hosted_invoice_url": text(obj.get("hosted_invoice_url"), 2048),
        "last_error_code": text(error.get("code"), 255),
        "last_error_message": text(error.get("message"), 5000),
        "period_start": timestamp(obj.get("period_start")),
        "period_end": timestamp(obj.get("period_end")),
        "created": timestamp(obj.get("created")),
    }
    link = shapes.invoice_payment_link(obj)
    if link is not None:
        values["payment_intent_id"] = link.payment_intent_id
        values["charge_id"] = link.charge_id
    return values


def _fill_payment_from_invoice_payments(session: Session, invoice: Invoice) -> None:
    refs = payment_refs_for_invoice(session=session, invoice_id=invoice.id)
    if refs is not None:
        charge_id = invoice.charge_id or refs.charge_id
        assign(invoice, {"payment_intent_id": refs.payment_intent_id, "charge_id": charge_id})


def apply_invoice_payment(session: Session, obj: dict[str, Any], source: Source) -> list[Change]:
    values = invoice_payment_values(obj, source)
    version = Version(at=source.at, event_id=source.event_id, state=values["status"])
    result = upsert_invoice_payment(session=session, values=values, version=version)
    row = result.row
    linked = []
    if row.status in ("paid", "open", None):
        linked = link_invoice_payment(
            session=session,
            invoice_id=row.invoice_id,
            charge_id=row.charge_id,
            payment_intent_id=row.payment_intent_id,
        )
    invoice = get_invoice(session=session, invoice_id=row.invoice_id)  # already loaded when linking
    customer_id = invoice.customer_id if invoice is not None else None
    changes = [
        change_for(
            "invoice_payment", result, source, customer_id=customer_id, invoice_id=row.invoice_id
        )
    ]
    changes += [
        Change("charge", charge.id, charge.customer_id, True, {"linked_invoice_id": row.invoice_id})
        for charge in linked
    ]
    return changes


def invoice_payment_values(obj: dict[str, Any], source: Source) -> dict[str, Any]:
    invoice_id = expandable_id(obj.get("invoice"))
    if invoice_id is None:
        raise ConversionError("invoice_payment has no invoice")
    target = shapes.invoice_payment_target(obj)
    return {
        "id": require_id(obj),
        "livemode": source.livemode_of(obj),
        "raw": obj,
        "invoice_id": invoice_id,
        "payment_intent_id": target.payment_intent_id,
        "charge_id": target.charge_id,
        "status": text(obj.get("status"), 32),
        "amount_paid": optional_amount(obj.get("amount_paid"), field="invoice_payment.amount_paid"),
        "currency": currency(obj.get("currency"), field="invoice_payment.currency"),
        "created": timestamp(obj.get("created")),
    }


def _record_invoice_timeline(session: Session, source: Source, result: Upserted[Invoice]) -> None:
    row, previous = result.row, result.previous
    was = previous.status if previous is not None else None
    status, failed = row.status, source.event_type == PAYMENT_FAILED
    if (status == was or status not in _LINE_STATUSES) and not failed:
        return  # most invoice events (created, finalized, updated) add no line
    number, invoice_id, customer_id = row.number, row.id, row.customer_id
    label = f"invoice {number or invoice_id}"
    title = f"Invoice {number or invoice_id}"

    def add(kind: str, summary: str, key: str, occurred_at=None) -> None:
        add_entry(
            session, source, customer_id=customer_id, object_id=invoice_id,
            kind=kind, summary=summary, key=key, occurred_at=occurred_at,
        )  # fmt: skip

    if status == "paid" and was != "paid":
        paid = format_money(row.amount_paid, row.currency)
        add(
            "invoice_paid",
            f"Paid {paid} for {label}",
            once_key(invoice_id, "invoice_paid"),
            row.paid_at,
        )
    elif status == "uncollectible" and was != "uncollectible":
        due = format_money(row.amount_remaining, row.currency)
        add("invoice_uncollectible", f"{title} ({due}) marked uncollectible",
            once_key(invoice_id, "invoice_uncollectible"))  # fmt: skip
    elif status == "void" and was != "void":
        add("invoice_voided", f"{title} voided", once_key(invoice_id, "invoice_voided"))
    if failed:
        attempt = row.attempt_count
        due = format_money(row.amount_due, row.currency)
        summary = f"Payment of {due} failed for {label} (attempt {attempt})"
        add("payment_failed", summary, once_key(invoice_id, f"payment_failed:{attempt}"))

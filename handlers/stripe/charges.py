"""Charges (`charge.*`) and refunds (`refund.*`, `charge.refund.updated`).

A basil charge does not name its invoice; the link is read from InvoicePayment rows when
the charge arrives second, and written onto the charge by `invoice_payment.paid` when it
arrives first. Once known, a charge's invoice is kept across later events.
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
    require_id,
    text,
    timestamp,
)
from handlers.stripe.events import StripeEvent
from handlers.stripe.recording import add_entry, change_for, once_key
from handlers.stripe.registry import Change, handles
from storage.billing import upsert_charge, upsert_refund
from storage.links import (
    get_charge,
    invoice_id_for_payment,
    note_invoice_charge,
    refunds_missing_customer,
)
from storage.models import Charge, Refund
from storage.money import format_money
from storage.rows import assign
from storage.versioning import Version

CHARGE_EVENTS = (
    "charge.succeeded",
    "charge.failed",
    "charge.pending",
    "charge.captured",
    "charge.expired",
    "charge.updated",
    "charge.refunded",
)
REFUND_EVENTS = ("charge.refund.updated", "refund.created", "refund.updated", "refund.failed")


@handles(*CHARGE_EVENTS)
def apply_charge_event(session: Session, event: StripeEvent) -> list[Change]:
    return apply_charge(session, event.object, Source.from_event(event))


@handles(*REFUND_EVENTS)
def apply_refund_event(session: Session, event: StripeEvent) -> list[Change]:
    return apply_refund(session, event.object, Source.from_event(event))


def apply_charge(session: Session, obj: dict[str, Any], source: Source) -> list[Change]:
    values = charge_values(obj, source)
    version = Version(
        at=source.at,
        event_id=source.event_id,
        state=values["status"],
        progress=values["amount_refunded"],
    )
    result = upsert_charge(session=session, values=values, version=version)
    row = result.row
    if result.applied:
        if "invoice_id" not in values and row.invoice_id is None:
            invoice_id = invoice_id_for_payment(
                session=session, charge_id=row.id, payment_intent_id=row.payment_intent_id
            )
            if invoice_id is not None:
                assign(row, {"invoice_id": invoice_id})
                note_invoice_charge(session=session, invoice_id=invoice_id, charge=row)
        if row.amount_refunded > 0 and row.customer_id is not None:
            _adopt_refunds(session, source, row)
        if row.status == "failed" and (
            result.previous is None or result.previous.status != "failed"
        ):
            reason = row.failure_message or row.failure_code
            summary = f"Charge of {format_money(row.amount, row.currency)} failed" + (
                f": {reason}" if reason else ""
            )
            add_entry(
                session, source, customer_id=row.customer_id, object_id=row.id,
                kind="charge_failed", summary=summary, key=once_key(row.id, "charge_failed"), occurred_at=row.created,
            )  # fmt: skip
    return [change_for("charge", result, source, customer_id=row.customer_id)]


def _adopt_refunds(session: Session, source: Source, charge: Charge) -> None:
    """Refunds that arrived before their charge did not know their customer: now they do."""
    for refund in refunds_missing_customer(session=session, charge_id=charge.id):
        assign(refund, {"customer_id": charge.customer_id})
        _record_refund_created(session, source, refund)


def _record_refund_created(session: Session, source: Source, refund: Refund) -> None:
    reason = f" ({refund.reason.replace('_', ' ')})" if refund.reason else ""
    add_entry(
        session, source, customer_id=refund.customer_id, object_id=refund.id, kind="refund_created",
        summary=f"Refund of {format_money(refund.amount, refund.currency)}{reason}",
        key=once_key(refund.id, "refund_created"), occurred_at=refund.created,
    )  # fmt: skip


def charge_values(obj: dict[str, Any], source: Source) -> dict[str, Any]:
    status = obj.get("status")
    if not isinstance(status, str):
        raise ConversionError("charge has no status")
    values = {
        "id": require_id(obj),
        "livemode": source.livemode_of(obj),
        "raw": obj,
        "customer_id": expandable_id(obj.get("customer")),
        "payment_intent_id": expandable_id(obj.get("payment_intent")),
        "status": status[:32],
        "currency": currency(obj.get("currency"), field="charge.currency"),
        "amount": amount(obj.get("amount"), field="charge.amount"),
        "amount_captured": amount(obj.get("amount_captured"), field="charge.amount_captured"),
        "amount_refunded": amount(obj.get("amount_refunded"), field="charge.amount_refunded"),
        "paid": flag(obj.get("paid")),
        "captured": flag(obj.get("captured")),
        "refunded": flag(obj.get("refunded")),
        "failure_code": text(obj.get("failure_code"), 255),
        "failure_message": text(obj.get("failure_message"), 5000),
        "created": timestamp(obj.get("created")),
    }
    known, invoice_id = shapes.charge_invoice(obj)
    if known:
        values["invoice_id"] = invoice_id
    return values


def apply_refund(session: Session, obj: dict[str, Any], source: Source) -> list[Change]:
    values = refund_values(obj, source)
    version = Version(at=source.at, event_id=source.event_id, state=values["status"])
    result = upsert_refund(session=session, values=values, version=version)
    row = result.row
    if result.applied and row.customer_id is None and row.charge_id is not None:
        charge = get_charge(session=session, charge_id=row.charge_id)
        if charge is not None:
            assign(row, {"customer_id": charge.customer_id})
    if result.created:
        _record_refund_created(session, source, row)
    return [
        change_for("refund", result, source, customer_id=row.customer_id, charge_id=row.charge_id)
    ]


def refund_values(obj: dict[str, Any], source: Source) -> dict[str, Any]:
    values = {
        "id": require_id(obj),
        "livemode": source.livemode_of(obj),
        "raw": obj,
        "charge_id": expandable_id(obj.get("charge")),
        "payment_intent_id": expandable_id(obj.get("payment_intent")),
        "status": text(obj.get("status"), 32),
        "reason": text(obj.get("reason"), 64),
        "currency": currency(obj.get("currency"), field="refund.currency"),
        "amount": amount(obj.get("amount"), field="refund.amount"),
        "created": timestamp(obj.get("created")),
    }
    customer_id = expandable_id(obj.get("customer"))
    if customer_id is not None:
        values["customer_id"] = customer_id
    return values

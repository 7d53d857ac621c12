"""Links that are facts, not versions: basil's InvoicePayment between an invoice and the
charges that paid it, and refunds that learn their customer from their charge.

Whichever of the invoice, the charge and the InvoicePayment arrives second completes the link
(docs/stripe-store.md). Each lookup here is answered from the unit of work when a worker batch
read its rows up front (`storage.billing.prefetch_reads`, `storage/held_rows.py`): then it
sees the batch's own unflushed writes without a query or a flush. Otherwise (a handler called
on its own, a lookup the batch did not foresee) it flushes and asks the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from sqlalchemy import or_
from sqlmodel import Session, SQLModel, select

from storage import held_rows
from storage.models import Charge, Invoice, InvoicePayment, Refund
from storage.rows import assign

RowT = TypeVar("RowT", bound=SQLModel)


def invoice_id_for_payment(
    *, session: Session, charge_id: str | None, payment_intent_id: str | None
) -> str | None:
    """The invoice an InvoicePayment row says this charge or payment intent paid."""
    if not charge_id and not payment_intent_id:
        return None
    by_charge = _rows_where(session, InvoicePayment, "charge_id", charge_id)
    by_intent = _rows_where(session, InvoicePayment, "payment_intent_id", payment_intent_id)
    if by_charge is None or by_intent is None:
        conditions = []
        if charge_id:
            conditions.append(InvoicePayment.charge_id == charge_id)
        if payment_intent_id:
            conditions.append(InvoicePayment.payment_intent_id == payment_intent_id)
        query = select(InvoicePayment.invoice_id).where(or_(*conditions)).limit(1)
        return _read(session, query).first()
    payments = by_charge + by_intent
    return payments[0].invoice_id if payments else None


@dataclass(frozen=True, slots=True)
class PaymentRefs:
    payment_intent_id: str | None
    charge_id: str | None


def payment_refs_for_invoice(*, session: Session, invoice_id: str) -> PaymentRefs | None:
    """How the invoice was paid, from its InvoicePayment rows: the paid one if any, else the
    latest; its charge, or the latest charge of its payment intent."""
    payments = _rows_where(session, InvoicePayment, "invoice_id", invoice_id)
    if payments is None:
        query = (
            select(InvoicePayment)
            .where(InvoicePayment.invoice_id == invoice_id)
            .order_by((InvoicePayment.status == "paid").desc(), InvoicePayment.created.desc())
            .limit(1)
        )
        payment = _read(session, query).first()
    else:
        payment = max(payments, key=_payment_order, default=None)
    if payment is None:
        return None
    charge_id = payment.charge_id
    if charge_id is None and payment.payment_intent_id is not None:
        charge_id = _latest_charge_id(session, payment.payment_intent_id)
    return PaymentRefs(payment_intent_id=payment.payment_intent_id, charge_id=charge_id)


def _payment_order(payment: InvoicePayment) -> tuple[bool, float, str]:
    # As the query: paid first, then the latest `created` (a missing one last).
    created = payment.created.timestamp() if payment.created else float("-inf")
    return (payment.status == "paid", created, payment.id)


def _latest_charge_id(session: Session, payment_intent_id: str) -> str | None:
    charges = _rows_where(session, Charge, "payment_intent_id", payment_intent_id)
    if charges is None:
        query = select(Charge.id).where(Charge.payment_intent_id == payment_intent_id)
        return _read(
            session, query.order_by(Charge.created.desc(), Charge.id.desc()).limit(1)
        ).first()
    latest = max(charges, key=_order, default=None)
    return latest.id if latest is not None else None


def link_invoice_payment(
    *, session: Session, invoice_id: str, charge_id: str | None, payment_intent_id: str | None
) -> list[Charge]:
    """Apply what an InvoicePayment says: its charges belong to the invoice, and the invoice
    was paid with them. Only fills links that are still unknown; returns the charges linked."""
    charges = _charges_paying(session, charge_id, payment_intent_id)
    linked = [charge for charge in charges if charge.invoice_id is None]
    for charge in linked:
        assign(charge, {"invoice_id": invoice_id})
        held_rows.note_row(session, charge)  # now one of the invoice's charges
    invoice = held_rows.get_row(session, Invoice, invoice_id)
    if invoice is not None:
        if invoice.payment_intent_id is None:
            assign(invoice, {"payment_intent_id": payment_intent_id})
        for charge in charges:
            _note_charge(session, invoice, charge)
        if invoice.charge_id is None:
            assign(invoice, {"charge_id": charge_id})
    return linked


def _charges_paying(
    session: Session, charge_id: str | None, payment_intent_id: str | None
) -> list[Charge]:
    """The charge with this id and the charges of this payment intent, oldest first."""
    if not charge_id and not payment_intent_id:
        return []
    by_id = _rows_where(session, Charge, "id", charge_id)
    by_intent = _rows_where(session, Charge, "payment_intent_id", payment_intent_id)
    if by_id is None or by_intent is None:
        conditions = []
        if charge_id:
            conditions.append(Charge.id == charge_id)
        if payment_intent_id:
            conditions.append(Charge.payment_intent_id == payment_intent_id)
        charges = list(_read(session, select(Charge).where(or_(*conditions))))
    else:
        charges = list({charge.id: charge for charge in by_id + by_intent}.values())
    return sorted(charges, key=_order)


def note_invoice_charge(*, session: Session, invoice_id: str, charge: Charge) -> None:
    """A charge was found to pay this invoice: fill the invoice's payment intent if unknown,
    and make it the invoice's charge if it has none or this one is later (as `invoice.charge`
    named the latest attempt before basil). The caller has just set the charge's
    `invoice_id`, so the charge is filed among the invoice's charges (`held_rows.note_row`)."""
    held_rows.note_row(session, charge)
    invoice = held_rows.get_row(session, Invoice, invoice_id)
    if invoice is not None:
        if invoice.payment_intent_id is None:
            assign(invoice, {"payment_intent_id": charge.payment_intent_id})
        _note_charge(session, invoice, charge)


def _note_charge(session: Session, invoice: Invoice, charge: Charge) -> None:
    if invoice.charge_id is None:
        assign(invoice, {"charge_id": charge.id})
        return
    if invoice.charge_id == charge.id:
        return
    current = held_rows.get_row(session, Charge, invoice.charge_id)
    if current is None:
        return  # the stored link came from a payload; keep it
    retry = (
        current.payment_intent_id is not None
        and current.payment_intent_id == charge.payment_intent_id
    )
    if retry and _order(charge) > _order(current):
        assign(invoice, {"charge_id": charge.id})


def _order(charge: Charge) -> tuple[float, str]:
    return (charge.created.timestamp() if charge.created else 0.0, charge.id)


def refunds_missing_customer(*, session: Session, charge_id: str) -> list[Refund]:
    refunds = _rows_where(session, Refund, "charge_id", charge_id)
    if refunds is None:
        query = select(Refund).where(Refund.charge_id == charge_id, Refund.customer_id.is_(None))
        return list(_read(session, query))
    return sorted((refund for refund in refunds if refund.customer_id is None), key=lambda r: r.id)


def get_charge(*, session: Session, charge_id: str) -> Charge | None:
    return held_rows.get_row(session, Charge, charge_id)


def _rows_where(
    session: Session, model: type[RowT], column: str, value: object
) -> list[RowT] | None:
    """The rows whose `column` equals `value` as this unit of work knows them (none for a
    missing value), or None when it does not know (the caller asks the database)."""
    if not value:
        return []
    return held_rows.found_rows(session, model, column, value)


def _read(session: Session, query):
    """A query for when this unit of work does not know the answer: everything pending is
    written first, so the answer includes the batch's own rows (whatever the autoflush)."""
    session.flush()
    return session.exec(query)

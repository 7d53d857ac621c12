"""The two searches an alert's facts make among charges, invoice payments and refunds: the
failed charge behind a decline reason, and the latest refund's reason.

Each is answered from the worker batch's memory when it can be exactly: the batch read the
rows these searches look at up front (`storage.billing.prefetch_reads`), and every row it
creates or changes since is filed with them (`storage/held_rows.py`), so the memory holds
the batch's own unflushed writes. The answer must be the query's, byte for byte, so memory
gives up (and the query runs, after a flush of everything pending) whenever it is not sure:
a search it was not prepared for, a candidate without a `created` time (the databases sort
NULLs differently), or newest candidates that tie on `created` and say different things
(the query then goes by id, in the database's collation).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, or_
from sqlmodel import Session, col, select

from storage import held_rows
from storage.models.billing import Charge, Invoice, InvoicePayment, Refund

Failure = tuple[str | None, str | None]  # a charge's failure_message and failure_code
UNKNOWN = held_rows.UNKNOWN
_FAILURE = (Charge.failure_message, Charge.failure_code)


def failed_charge(session: Session, invoice: Invoice) -> Failure | None:
    """The newest failed charge linked to the invoice (directly, or through its payment
    intents: from 2025-03-31.basil on, charges reach invoices only through InvoicePayment);
    else the newest unlinked one that looks like it (`_unlinked`)."""
    known = _held_failed_charge(session, invoice)
    if known is not UNKNOWN:
        return known  # type: ignore[return-value]
    return _queried_failed_charge(session, invoice)


def latest_refund_reason(session: Session, charge_id: str) -> str | None:
    """The reason of the charge's latest refund (None too when it has none)."""
    refunds = held_rows.found_rows(session, Refund, "charge_id", charge_id)
    if refunds is not None:
        known = _newest(refunds, lambda refund: refund.reason)
        if known is not UNKNOWN:
            return known  # type: ignore[return-value]
    session.flush()  # the batch's refunds, for the query
    statement = (
        select(Refund.reason)
        .where(Refund.charge_id == charge_id)
        .order_by(col(Refund.created).desc(), col(Refund.id).desc())
        .limit(1)
    )
    return session.exec(statement).first()


# --- from memory ----------------------------------------------------------------------


def _held_failed_charge(session: Session, invoice: Invoice) -> Failure | None | object:
    """`failed_charge` from the batch's memory, or UNKNOWN."""
    payments = held_rows.found_rows(session, InvoicePayment, "invoice_id", invoice.id)
    if payments is None:
        return UNKNOWN
    intents = {p.payment_intent_id for p in payments if p.payment_intent_id is not None}
    if invoice.payment_intent_id:
        intents.add(invoice.payment_intent_id)
    linked = (
        _charges(session, "invoice_id", [invoice.id]),
        _charges(session, "payment_intent_id", intents),
    )
    if linked[0] is None or linked[1] is None:
        return UNKNOWN
    failed = [charge for charge in [*linked[0], *linked[1]] if charge.status == "failed"]
    if failed:  # a linked charge first, whatever its age
        return _newest(failed, _failure)
    if invoice.customer_id is None:
        return None
    theirs = _charges(session, "customer_id", [invoice.customer_id])
    if theirs is None:
        return UNKNOWN
    amount = invoice.amount_remaining or invoice.amount_due
    alike = [
        charge
        for charge in theirs
        if charge.status == "failed"
        and charge.currency == invoice.currency
        and charge.amount == amount
        and charge.invoice_id is None
        and (invoice.created is None or _since(charge, invoice))
    ]
    return _newest(alike, _failure) if alike else None


def _charges(session: Session, column: str, values: Iterable[str]) -> list[Charge] | None:
    """The charges whose `column` is one of `values`, or None when memory does not know."""
    found: list[Charge] = []
    for value in values:
        rows = held_rows.found_rows(session, Charge, column, value)
        if rows is None:
            return None
        found += rows
    return found


def _since(charge: Charge, invoice: Invoice) -> bool:
    return charge.created is not None and charge.created >= invoice.created  # type: ignore[operator]


def _failure(charge: Charge) -> Failure:
    return charge.failure_message, charge.failure_code


def _newest(rows: list[Any], answer: Callable[[Any], Any]) -> Any:
    """What the newest row says (by `created`; None when there are none), or UNKNOWN when
    the database's order would decide: a row without `created`, or a tie that disagrees."""
    if not rows:
        return None
    if any(row.created is None for row in rows):
        return UNKNOWN
    newest = max(row.created for row in rows)
    answers = {answer(row) for row in rows if row.created == newest}
    return answers.pop() if len(answers) == 1 else UNKNOWN


# --- from the database ----------------------------------------------------------------


def _queried_failed_charge(session: Session, invoice: Invoice) -> Failure | None:
    """`failed_charge` as one query, reading only the two columns the reason needs."""
    session.flush()  # the batch's charges and invoice payments, for the query
    paid_with = select(InvoicePayment.payment_intent_id).where(
        InvoicePayment.invoice_id == invoice.id
    )
    linked = or_(
        Charge.invoice_id == invoice.id,
        col(Charge.payment_intent_id).in_(paid_with.scalar_subquery()),
        *(
            [Charge.payment_intent_id == invoice.payment_intent_id]
            if invoice.payment_intent_id
            else []
        ),
    )
    statement = (
        select(*_FAILURE)
        .where(Charge.status == "failed", or_(linked, _unlinked(invoice)))
        .order_by(
            case((linked, 0), else_=1),  # a linked charge first, whatever its age
            col(Charge.created).desc(),
            col(Charge.id).desc(),
        )
        .limit(1)
    )
    found = session.exec(statement).first()
    return (found[0], found[1]) if found else None


def _unlinked(invoice: Invoice) -> ColumnElement[bool]:
    """From basil on, nothing in an invoice or charge event links the two until the invoice is
    paid (`invoice_payment.paid`), so a failed attempt's charge is found by what it charged:
    the customer's newest failed charge of the invoice's amount and currency since the invoice
    was created, not linked to another invoice. Two unpaid invoices of one amount may share a
    reason; both failed on the same card."""
    if invoice.customer_id is None:
        return false()
    conditions = [
        Charge.customer_id == invoice.customer_id,
        Charge.currency == invoice.currency,
        Charge.amount == (invoice.amount_remaining or invoice.amount_due),
        col(Charge.invoice_id).is_(None),
    ]
    if invoice.created is not None:
        conditions.append(col(Charge.created) >= invoice.created)
    return and_(*conditions)

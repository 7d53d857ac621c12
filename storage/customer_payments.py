"""What customers have paid: lifetime value and last successful payment.

Lifetime value = money received minus money given back, per currency, never converted:

- Every succeeded charge counts with its captured amount (`amount_captured`; `amount` for
  old captured charges that predate that field). Charges are the money that actually
  moved, and they include one-off payments that have no invoice.
- A paid invoice counts with `amount_paid` only when no stored charge backs it (linked by
  `invoice.charge_id`, `charge.invoice_id`, a shared payment intent, or an invoice payment
  row), so an invoice and its charge are never counted twice; this keeps the figure right
  when charge events were not received or not yet backfilled.
- Refunds reduce the charge they belong to: `max(charge.amount_refunded, sum of its
  succeeded/pending refund rows)`, at most the captured amount. Counting both the charge's
  own total and the refund rows would count a refund twice; taking the larger copes with
  either event arriving first. Refunds of charges the store does not have are ignored, as
  the charge was never counted.

The last payment is the newest succeeded charge or unbacked paid invoice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Row, bindparam, func, select
from sqlmodel import Session

from storage.models import Charge, InvoicePayment, Refund

COUNTED_REFUNDS = ("succeeded", "pending")


@dataclass(frozen=True, slots=True)
class Payment:
    id: str  # ch_... or in_...
    amount: int
    currency: str
    at: datetime | None


@dataclass(slots=True)
class PaymentHistory:
    lifetime_value: dict[str, int] = field(default_factory=dict)  # currency -> minor units
    last_payment: Payment | None = None
    freshest: datetime | None = None  # newest updated_at/version_at of charges and refunds


REFUNDED_ROWS = (
    select(func.coalesce(func.sum(Refund.amount), 0))
    .where(Refund.charge_id == Charge.id, Refund.status.in_(COUNTED_REFUNDS))
    .correlate(Charge)
    .scalar_subquery()
    .label("refunded_rows")
)
REFUNDS_UPDATED = (
    select(func.max(Refund.updated_at))
    .where(Refund.charge_id == Charge.id)
    .correlate(Charge)
    .scalar_subquery()
)
CHARGES = select(
    Charge.id, Charge.customer_id, Charge.invoice_id, Charge.payment_intent_id, Charge.status, Charge.currency,
    Charge.amount, Charge.amount_captured, Charge.amount_refunded, Charge.captured, Charge.created,
    Charge.updated_at, Charge.version_at, REFUNDED_ROWS, REFUNDS_UPDATED.label("refunds_updated_at"),
).where(Charge.customer_id.in_(bindparam("ids", expanding=True)))  # fmt: skip
INVOICE_PAYMENTS = select(
    InvoicePayment.invoice_id, InvoicePayment.charge_id, InvoicePayment.payment_intent_id
).where(InvoicePayment.invoice_id.in_(bindparam("ids", expanding=True)))


def payment_histories(
    *, session: Session, customer_ids: Sequence[str], invoices: Sequence[Row]
) -> dict[str, PaymentHistory]:
    """One history per customer id. `invoices`: the customers' invoice rows (any status),
    already loaded by the caller. One query for charges and their refunds, and one more
    only when a paid invoice is not linked to a stored charge by its own columns."""
    histories = {customer_id: PaymentHistory() for customer_id in customer_ids}
    backing: set[str] = set()
    for charge in session.connection().execute(CHARGES, {"ids": list(customer_ids)}):
        history = histories[charge.customer_id]
        _touch(history, charge.updated_at, charge.version_at, charge.refunds_updated_at)
        if charge.status != "succeeded":
            continue
        backing.update(
            key for key in (charge.id, charge.payment_intent_id, charge.invoice_id) if key
        )
        captured = charge.amount_captured or (charge.amount if charge.captured else 0)
        given_back = min(max(charge.amount_refunded, int(charge.refunded_rows)), captured)
        _add(history, charge.currency, captured - given_back)
        _consider_last(history, Payment(charge.id, captured, charge.currency, charge.created))
    paid = [inv for inv in invoices if inv.status == "paid" and inv.amount_paid > 0]
    unlinked = [inv for inv in paid if not backing & {inv.id, inv.charge_id, inv.payment_intent_id}]
    links: dict[str, set[str]] = defaultdict(set)
    if unlinked:
        for invoice_id, charge_id, intent_id in session.connection().execute(
            INVOICE_PAYMENTS, {"ids": [i.id for i in unlinked]}
        ):
            links[invoice_id].update(key for key in (charge_id, intent_id) if key)
    for invoice in unlinked:
        if backing & links.get(invoice.id, set()):
            continue
        history = histories[invoice.customer_id]
        _add(history, invoice.currency, invoice.amount_paid)
        _consider_last(
            history,
            Payment(
                invoice.id,
                invoice.amount_paid,
                invoice.currency,
                invoice.paid_at or invoice.created,
            ),
        )
    return histories


def _add(history: PaymentHistory, currency: str, amount: int) -> None:
    history.lifetime_value[currency] = history.lifetime_value.get(currency, 0) + amount


def _consider_last(history: PaymentHistory, payment: Payment) -> None:
    if payment.amount <= 0:
        return
    last = history.last_payment
    if last is None or (payment.at is not None and (last.at is None or payment.at > last.at)):
        history.last_payment = payment


def _touch(history: PaymentHistory, *moments: datetime | None) -> None:
    for moment in moments:
        if moment is not None and (history.freshest is None or moment > history.freshest):
            history.freshest = moment

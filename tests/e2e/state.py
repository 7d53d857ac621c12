"""A customer's stored state as comparable text: every billing row that belongs to a story,
with the story's Stripe ids replaced by their role names, so two runs of the same story
(with different ids, delivered differently) can be compared for equality."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, or_, select
from sqlmodel import SQLModel

from storage.db import read_scope
from storage.models import (
    Charge,
    Customer,
    Invoice,
    InvoicePayment,
    Refund,
    Subscription,
    SubscriptionItem,
)
from storage.models.ledger import CustomerMrr, MrrMovement
from tests.e2e.story import Story

# Columns that say how or when a row was written, not what it holds.
BOOKKEEPING = {"version_event_id", "updated_at", "event_id", "id_"}


def _rows(engine: Engine, model: type[SQLModel], *conditions: Any) -> list[dict[str, Any]]:
    with read_scope(engine) as session:
        rows = session.execute(select(model).where(or_(*conditions))).scalars().all()
        return [
            {key: value for key, value in row.model_dump().items() if key not in BOOKKEEPING}
            for row in rows
        ]


def store_state(engine: Engine, story: Story) -> dict[str, Any]:
    """The story's rows (customer, subscription and items, invoices and their payments,
    charges, refunds) and its MRR state, with ids named by role."""
    cus, sub, invoices = story.customer_id, story.subscription_id, story.invoice_ids
    state = {
        "customer": _rows(engine, Customer, Customer.id == cus),
        "subscription": _rows(engine, Subscription, Subscription.customer_id == cus),
        "items": _rows(engine, SubscriptionItem, SubscriptionItem.subscription_id == sub),
        "invoices": _rows(engine, Invoice, Invoice.customer_id == cus),
        "invoice_payments": _rows(engine, InvoicePayment, InvoicePayment.invoice_id.in_(invoices)),
        "charges": _rows(engine, Charge, Charge.customer_id == cus),
        "refunds": _rows(engine, Refund, Refund.charge_id.in_(story.charge_ids)),
        "mrr": {  # a customer who never had MRR may have no row at all
            row["currency"]: (row["mrr"], row["paused"])
            for row in _rows(engine, CustomerMrr, CustomerMrr.customer_id == cus)
            if row["mrr"] or row["paused"]
        },
        "ledger_total": str(ledger_total(engine, story)),
    }
    text = json.dumps(state, sort_keys=True, default=str)
    for ident, role in sorted(story.roles.items(), key=lambda pair: -len(pair[0])):
        text = text.replace(ident, role)
    return {
        name: sorted(rows, key=lambda row: json.dumps(row, sort_keys=True))
        if isinstance(rows, list)
        else rows
        for name, rows in json.loads(text).items()
    }


def ledger_total(engine: Engine, story: Story) -> Decimal:
    """The sum of the customer's ledger lines: their MRR as the ledger sees it."""
    with read_scope(engine) as session:
        amounts = session.execute(
            select(MrrMovement.amount).where(MrrMovement.customer_id == story.customer_id)
        ).scalars()
        return Decimal(sum(amounts))


def ledger_lines(engine: Engine, story: Story) -> list[tuple[str, int, str]]:
    """(kind, amount in ledger units, ISO time) of the customer's ledger, in time order."""
    with read_scope(engine) as session:
        rows = session.execute(
            select(MrrMovement)
            .where(MrrMovement.customer_id == story.customer_id)
            .order_by(MrrMovement.occurred_at, MrrMovement.id)
        ).scalars()
        return [(row.kind, row.amount, row.occurred_at.isoformat()) for row in rows]


def ledger_event_ids(engine: Engine, story: Story) -> list[str]:
    """The events that caused the customer's ledger lines, in time order."""
    with read_scope(engine) as session:
        return list(
            session.execute(
                select(MrrMovement.event_id)
                .where(MrrMovement.customer_id == story.customer_id)
                .order_by(MrrMovement.occurred_at, MrrMovement.id)
            ).scalars()
        )

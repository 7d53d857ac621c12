"""Shared helpers for the sync tests: webhook deliveries through the real inbox and worker,
and read-outs of the ledger, the timeline and the outbox."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import col, select

from bot.services import standard_reactions
from bot.settings import Settings
from bot.worker import Worker
from storage.db import read_scope
from storage.models import (
    Alert,
    CustomerMrr,
    MrrMovement,
    OutboxMessage,
    Subscription,
    SubscriptionItem,
    TimelineEntry,
)
from storage.models.ledger import from_ledger_units
from storage.revenue import customer_mrr_from_store
from tests.ingest_support import receive_events

SLACK = {"slack_alert_channel": "#alerts", "slack_channel_digest": "#digest"}


def receive(engine: Engine, *events: dict, source: str = "webhook") -> None:
    """Events into the inbox, as the webhook (or reconcile) stores them."""
    receive_events(engine, events, source=source)


def work(engine: Engine, settings: Settings, *, clock=None, batch_size: int = 200) -> int:
    """Apply every due event with the reactions a running billbot uses (ledger, alerts)."""
    kwargs = {"clock": clock} if clock is not None else {}
    worker = Worker(
        engine=engine, batch_size=batch_size, reactions=standard_reactions(settings), **kwargs
    )
    return worker.drain().applied


def ledger(engine: Engine, customer_id: str) -> list[tuple[str, datetime, Decimal]]:
    """(kind, occurred_at, amount in minor units) oldest first."""
    with read_scope(engine) as session:
        rows = session.exec(
            select(MrrMovement)
            .where(MrrMovement.customer_id == customer_id)
            .order_by(col(MrrMovement.occurred_at), col(MrrMovement.id))
        )
        return [(r.kind, r.occurred_at, from_ledger_units(r.amount)) for r in rows]


def ledger_agrees_with_store(engine: Engine) -> dict[str, tuple[Decimal, Decimal, Decimal]]:
    """customer -> (sum of lines, recorded MRR, store MRR) wherever the three differ."""
    differ = {}
    with read_scope(engine) as session:
        customers = set(session.exec(select(Subscription.customer_id))) | set(
            session.exec(select(MrrMovement.customer_id))
        )
        for customer_id in sorted(customers):
            lines = sum(
                (from_ledger_units(m.amount) for m in session.exec(
                    select(MrrMovement).where(MrrMovement.customer_id == customer_id)
                )),
                Decimal(0),
            )  # fmt: skip
            recorded = sum(
                (from_ledger_units(r.mrr) for r in session.exec(
                    select(CustomerMrr).where(CustomerMrr.customer_id == customer_id)
                )),
                Decimal(0),
            )  # fmt: skip
            store = sum(
                (v.mrr for v in customer_mrr_from_store(session, customer_id=customer_id).values()),
                Decimal(0),
            )
            if not lines == recorded == store:
                differ[customer_id] = (lines, recorded, store)
    return differ


def timeline(engine: Engine, customer_id: str) -> list[tuple[str, datetime]]:
    with read_scope(engine) as session:
        rows = session.exec(
            select(TimelineEntry)
            .where(TimelineEntry.customer_id == customer_id)
            .order_by(col(TimelineEntry.occurred_at), col(TimelineEntry.id))
        )
        return [(r.kind, r.occurred_at) for r in rows]


def outbox_rows(engine: Engine) -> list[OutboxMessage]:
    with read_scope(engine) as session:
        rows = list(session.exec(select(OutboxMessage).order_by(col(OutboxMessage.id))))
        session.expunge_all()  # keep them readable after the read-only unit of work
        return rows


def alert_rows(engine: Engine) -> list[Alert]:
    with read_scope(engine) as session:
        rows = list(session.exec(select(Alert)))
        session.expunge_all()
        return rows


def quantities(engine: Engine) -> dict[str, int]:
    with read_scope(engine) as session:
        return {i.subscription_id: i.quantity for i in session.exec(select(SubscriptionItem))}

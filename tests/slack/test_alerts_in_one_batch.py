"""Alerts are the same whether the worker applies a customer's events one per transaction or
all in one batch: the batch's unit of work answers "has this incident an alert?" from what
it read and wrote itself (storage/alerts.py), and that must never change an outcome."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, delete, select, text
from sqlmodel import SQLModel

from bot.services import standard_reactions
from bot.worker import Worker
from storage.db import read_scope
from storage.models import Alert, OutboxMessage
from storage.models.outbox import Operation
from tests import factories as f
from tests.ingest_support import receive_events
from tests.slack.conftest import make_settings

CUSTOMERS = 4


def story(number: int, start: int) -> list[dict[str, Any]]:
    """Failed twice then paid, an upgrade, a refund, a cancellation scheduled, undone,
    scheduled again and ended; a late copy of a failure in between."""
    version = f.API_VERSIONS[number % 2]
    events: list[dict[str, Any]] = []

    def emit(offset: int, event_type: str, obj: dict[str, Any], **kwargs: Any) -> None:
        events.append(
            f.event(event_type, obj, created=start + offset, api_version=version, **kwargs)
        )

    person = f.customer(api_version=version, email=f"b{number}@example.com", name=f"B {number}")
    cus = person["id"]
    seats = f.price(api_version=version, unit_amount=1500, nickname="Seats")
    line = f.item(seats, 2)
    sub = f.subscription(api_version=version, customer=cus, items=[line], created=start)
    emit(0, "customer.created", person)
    emit(1, "customer.subscription.created", sub)
    invoice_id, intent = f.new_id("in"), f.new_id("pi")
    amount = 3000

    def invoice(**values: Any) -> dict[str, Any]:
        return f.invoice(api_version=version, customer=cus, subscription=sub["id"],
                         id=invoice_id, amount_due=amount, payment_intent=intent, **values)  # fmt: skip

    def charge(status: str) -> dict[str, Any]:
        return f.charge(api_version=version, customer=cus, amount=amount, payment_intent=intent,
                        invoice=invoice_id, status=status,
                        failure_code="card_declined" if status == "failed" else None)  # fmt: skip

    emit(2, "invoice.finalized", invoice())
    for attempt in (1, 2):
        failed_charge = charge("failed")
        emit(2 + attempt, "charge.failed", failed_charge)
        failed = invoice(attempt_count=attempt, next_payment_attempt=start + 3 * f.DAY,
                         charge=failed_charge["id"])  # fmt: skip
        emit(2 + attempt, "invoice.payment_failed", failed)
        if attempt == 1:
            late_copy = failed
    emit(4, "invoice.payment_failed", late_copy)  # older than what the store holds: quiet
    paid_charge = charge("succeeded")
    emit(5, "charge.succeeded", paid_charge)
    if f.is_basil(version):
        emit(5, "invoice_payment.paid",
             f.invoice_payment(invoice=invoice_id, payment_intent=intent, amount_paid=amount))  # fmt: skip
    paid = invoice(status="paid", amount_paid=amount, attempt_count=3, paid_at=start + 5,
                   charge=paid_charge["id"])  # fmt: skip
    emit(5, "invoice.paid", paid)
    old_items = {"object": "list", "data": [sub["items"]["data"][0]]}
    sub = f.subscription(api_version=version, customer=cus, items=[f.item(seats, 5, id=line.id)],
                         id=sub["id"], created=start)  # fmt: skip
    emit(6, "customer.subscription.updated", sub, previous_attributes={"items": old_items})
    emit(7, "charge.refunded", {**paid_charge, "amount_refunded": 1000},
         previous_attributes={"amount_refunded": 0})  # fmt: skip
    emit(7, "refund.created", f.refund(charge=paid_charge["id"], amount=1000, created=start + 7))
    for offset, ending in ((8, True), (9, False), (10, True)):
        emit(offset, "customer.subscription.updated", {**sub, "cancel_at_period_end": ending},
             previous_attributes={"cancel_at_period_end": not ending})  # fmt: skip
    ended = {**sub, "status": "canceled", "canceled_at": start + 11, "ended_at": start + 11}
    emit(11, "customer.subscription.deleted", ended)
    return events


def stream() -> list[dict[str, Any]]:
    events = [e for n in range(CUSTOMERS) for e in story(n, f.T0 + 2 * n)]
    return sorted(events, key=lambda e: e["created"])


def apply_all(engine: Engine, events: list[dict[str, Any]], *, batch_size: int) -> None:
    receive_events(engine, events)
    reactions = standard_reactions(make_settings())
    worker = Worker(engine=engine, batch_size=batch_size, reactions=reactions)
    result = worker.drain()
    assert (result.applied, result.retrying, result.dead) == (len(events), 0, 0)


def snapshot(engine: Engine) -> tuple[list[tuple], list[tuple]]:
    with read_scope(engine) as session:
        alerts = [
            (
                a.id,
                a.incident_key,
                a.kind,
                a.state,
                a.revision,
                a.facts,
                a.event_id,
                a.last_event_id,
                a.recovered_at,
                a.channel,
            )  # fmt: skip
            for a in session.exec(select(Alert).order_by(Alert.id)).scalars()
        ]
        outbox = [
            (m.dedupe_key, m.operation, m.kind, m.status, m.alert_id, m.payload, m.channel)
            for m in session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).scalars()
        ]
    return alerts, outbox


def wipe(engine: Engine) -> None:
    tables = SQLModel.metadata.sorted_tables
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            names = ", ".join(f'"{t.name}"' for t in tables)
            connection.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(tables):
                connection.execute(delete(table))


def test_one_batch_alerts_exactly_as_one_event_per_transaction(engine):
    events = stream()
    apply_all(engine, events, batch_size=1)
    one_by_one = snapshot(engine)
    wipe(engine)
    apply_all(engine, events, batch_size=500)
    together = snapshot(engine)

    alerts, outbox = one_by_one
    kinds = {kind for _, _, kind, *_ in alerts}
    assert {"payment_failed", "upgrade", "refund", "canceled"} <= kinds
    assert any(state == "recovered" and revision >= 2 for _, _, _, state, revision, *_ in alerts)
    operations = {operation for _, operation, *_ in outbox}
    assert {Operation.POST, Operation.UPDATE, Operation.REPLY} <= operations
    assert together == one_by_one

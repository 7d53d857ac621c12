"""An alert's decline-reason and refund-reason searches answer from a worker batch's memory
(handlers/alerts/searches.py) only when that answer is the query's: checked against the query
on random stores, before and after the batch's own unflushed writes."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlmodel import Session, select

from handlers.alerts import searches
from handlers.stripe.events import parse_event
from handlers.stripe.registry import handler_for
from storage import billing
from storage.db import session_scope
from storage.models import Charge, Invoice, InvoicePayment, Refund
from tests import factories as f
from tests.slack.factories import T0, unix

CUSTOMERS = ["cus_a", "cus_b", "cus_c"]
INTENTS = ["pi_1", "pi_2", "pi_3", "pi_4"]
INVOICES = [f"in_{n}" for n in range(6)]
MESSAGES = [(None, None), ("Your card was declined.", "card_declined"), (None, "expired_card")]


def _moment(rng: random.Random) -> object:
    return None if rng.random() < 0.05 else T0 + timedelta(hours=rng.randrange(4))


def _seed(session: Session, rng: random.Random) -> None:
    for invoice_id in INVOICES:
        session.add(
            Invoice(
                id=invoice_id,
                customer_id=rng.choice([*CUSTOMERS, None]),
                status="open",
                currency=rng.choice(["usd", "eur"]),
                amount_due=rng.choice([1000, 2000]),
                amount_remaining=rng.choice([0, 1000]),
                payment_intent_id=rng.choice([*INTENTS, None, None]),
                created=_moment(rng),
                version_at=T0,
            )
        )
    for n in range(rng.randrange(4)):
        session.add(
            InvoicePayment(
                id=f"inpay_{n}",
                invoice_id=rng.choice(INVOICES),
                payment_intent_id=rng.choice([*INTENTS, None]),
                currency="usd",
                version_at=T0,
            )
        )
    for n in range(12):
        message, code = rng.choice(MESSAGES)
        session.add(
            Charge(
                id=f"ch_{n:02d}",
                customer_id=rng.choice(CUSTOMERS),
                invoice_id=rng.choice([*INVOICES, None, None, None]),
                payment_intent_id=rng.choice([*INTENTS, None]),
                status=rng.choice(["failed", "failed", "succeeded"]),
                currency=rng.choice(["usd", "eur"]),
                amount=rng.choice([1000, 2000]),
                failure_message=message,
                failure_code=code,
                created=_moment(rng),
                version_at=T0,
            )
        )
        if rng.random() < 0.5:
            for r in range(rng.randrange(1, 3)):
                session.add(
                    Refund(
                        id=f"re_{n:02d}_{r}",
                        charge_id=f"ch_{n:02d}",
                        reason=rng.choice(["duplicate", "fraudulent", None]),
                        currency="usd",
                        created=_moment(rng),
                        version_at=T0,
                    )
                )


def _batch_writes(session: Session, rng: random.Random) -> None:
    """A batch's own writes, left unflushed: new failed charges (linked or not) and basil
    payments that link charges to invoices."""
    for n in range(3):
        message, code = rng.choice(MESSAGES[1:])
        obj = f.charge(
            api_version=f.OLD,
            customer=rng.choice(CUSTOMERS),
            id=f"ch_new_{n}",
            amount=rng.choice([1000, 2000]),
            currency=rng.choice(["usd", "eur"]),
            status="failed",
            invoice=rng.choice([*INVOICES, None]),
            payment_intent=rng.choice([*INTENTS, None]),
            failure_code=code,
            failure_message=message,
            created=unix(T0) + 3600 * rng.randrange(5),
        )
        _apply(session, f.event("charge.failed", obj, api_version=f.OLD, created=obj["created"]))
    for payment in (
        f.invoice_payment(invoice=rng.choice(INVOICES), payment_intent=rng.choice(INTENTS)),
        f.invoice_payment(invoice=rng.choice(INVOICES), charge=f"ch_{rng.randrange(12):02d}"),
        f.invoice_payment(invoice=rng.choice(INVOICES), charge="ch_new_0"),
    ):
        event = f.event("invoice_payment.paid", payment, api_version=f.NEW, created=unix(T0))
        _apply(session, event)


def _apply(session: Session, payload: dict) -> None:
    event = parse_event(payload)
    handler_for(event.type)(session, event)


def _prefetch(session: Session) -> None:
    """What the worker reads up front for a batch about all these invoices and charges."""
    charges = list(session.exec(select(Charge.id)))
    billing.prefetch_reads(
        session=session,
        keys=billing.BatchReads(
            invoice_ids=set(INVOICES),
            charge_ids={*charges, "ch_new_0", "ch_new_1", "ch_new_2"},
            payment_intent_ids=set(INTENTS),
            charges_of_invoices=set(INVOICES),
            charges_of_customers=set(CUSTOMERS),
        ),
    )


def _compare(session: Session) -> int:
    """Every search from memory (all before the first query, whose flush would write the
    batch's rows) against the query; returns how many memory answered."""
    invoices = [session.get(Invoice, invoice_id) for invoice_id in INVOICES]
    charges = [f"ch_{n:02d}" for n in range(12)]
    held = [searches._held_failed_charge(session, invoice) for invoice in invoices]
    reasons = [
        searches.latest_refund_reason(session, charge_id)
        if billing.held_rows.found_rows(session, Refund, "charge_id", charge_id) is not None
        else searches.UNKNOWN
        for charge_id in charges
    ]
    for invoice, answer in zip(invoices, held, strict=True):
        if answer is not searches.UNKNOWN:
            assert answer == searches._queried_failed_charge(session, invoice), invoice.id
    session.flush()
    for charge_id, reason in zip(charges, reasons, strict=True):
        statement = (
            select(Refund.reason)
            .where(Refund.charge_id == charge_id)
            .order_by(Refund.created.desc(), Refund.id.desc())
            .limit(1)
        )
        assert reason == session.exec(statement).first(), charge_id
    return sum(answer is not searches.UNKNOWN for answer in held)


@pytest.mark.parametrize("seed", range(12))
def test_memory_answers_as_the_query_does(engine, seed):
    rng = random.Random(seed)
    with session_scope(engine) as session:
        _seed(session, rng)
    with session_scope(engine) as session:
        _prefetch(session)
        before = _compare(session)
        _batch_writes(session, rng)
        after = _compare(session)
        session.rollback()
    assert before + after > 0  # memory answered some (the rest had a tie or no `created`)


def test_a_search_the_batch_did_not_prepare_for_asks_the_database(engine):
    rng = random.Random(7)
    with session_scope(engine) as session:
        _seed(session, rng)
    with session_scope(engine) as session:
        invoice = session.get(Invoice, "in_0")
        assert searches._held_failed_charge(session, invoice) is searches.UNKNOWN
        assert searches.failed_charge(session, invoice) == searches._queried_failed_charge(
            session, invoice
        )


def test_newest_refuses_to_guess_the_databases_order():
    class Row:
        def __init__(self, created, reason):
            self.created, self.reason = created, reason

    reason = searches._newest  # noqa: SLF001
    assert reason([], lambda row: row.reason) is None
    assert reason([Row(T0, "a"), Row(None, "b")], lambda row: row.reason) is searches.UNKNOWN
    assert reason([Row(T0, "a"), Row(T0, "b")], lambda row: row.reason) is searches.UNKNOWN
    assert reason([Row(T0, "a"), Row(T0, "a")], lambda row: row.reason) == "a"
    later = T0 + timedelta(seconds=1)
    assert reason([Row(T0, "a"), Row(later, "b")], lambda row: row.reason) == "b"

"""Two workers on PostgreSQL applying events for the same object at once: the row lock taken
by the upsert's read makes the second wait and then decide on the newest version, so an
older event can never win by reading before a newer one commits."""

from __future__ import annotations

import threading
import time

from sqlalchemy import text

from handlers.stripe.events import parse_event
from handlers.stripe.registry import handler_for
from storage.db import make_engine, session_scope
from storage.models import Invoice
from tests import factories as f
from tests.handlers.support import fetch


def _apply(engine, raw):
    event = parse_event(raw)
    with session_scope(engine) as session:
        return handler_for(event.type)(session, event)


def _wait_until_blocked(engine, errors: list[BaseException], deadline_s: float = 10.0) -> None:
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    end = time.monotonic() + deadline_s
    with engine.connect() as connection:
        while True:
            waiting = connection.execute(query).scalar_one()
            connection.rollback()  # pg_stat_activity is a snapshot per transaction
            if waiting:
                return
            assert not errors, f"the second worker failed: {errors[0]!r}"
            assert time.monotonic() < end, "the second worker never waited for the row lock"
            time.sleep(0.005)


def test_an_older_event_waits_for_a_newer_one_in_flight(postgres_url):
    engine = make_engine(postgres_url)
    inv = f.invoice(customer="cus_lock", status="open")
    _apply(engine, f.event("invoice.finalized", inv, created=f.T0, api_version=f.NEW))
    newer = f.event("invoice.paid", dict(inv, status="paid", amount_paid=2000, amount_remaining=0),
                    created=f.T0 + 20, api_version=f.NEW)  # fmt: skip
    older = f.event(
        "invoice.updated", dict(inv, attempt_count=1), created=f.T0 + 10, api_version=f.NEW
    )
    results = []
    with session_scope(engine) as session:
        event = parse_event(newer)
        handler_for(event.type)(session, event)
        session.flush()  # the newer version is written and its row locked, not yet committed
        errors: list[BaseException] = []

        def run_second() -> None:
            try:
                results.extend(_apply(engine, older))
            except BaseException as exc:  # reported below, with the main thread's assertion
                errors.append(exc)

        second = threading.Thread(target=run_second)
        second.start()
        _wait_until_blocked(engine, errors)
    second.join(timeout=30)
    assert [c.applied for c in results] == [False]
    row = fetch(engine, Invoice, inv["id"])
    assert (row.status, row.version_event_id) == ("paid", newer["id"])
    engine.dispose()

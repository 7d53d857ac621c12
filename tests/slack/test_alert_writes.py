"""The alerts a worker batch opens are written together (`storage.alerts.write_opened`), and
that changes no outcome: the same alerts, ids and outbox rows as one event per transaction,
whatever the batch size; nothing of a rolled-back batch survives; and an incident another
transaction opens meanwhile keeps its one alert (PostgreSQL)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, select

from bot.services import standard_reactions
from bot.worker import Worker
from handlers.stripe.registry import AppliedEvent, Reaction
from storage.db import make_engine, read_scope
from storage.models import Alert, OutboxMessage
from storage.models.alerts import AlertKind
from storage.models.outbox import Operation
from storage.types import utcnow
from tests import factories as f
from tests.ingest_support import receive_events
from tests.slack.conftest import make_settings
from tests.slack.test_alerts_in_one_batch import snapshot, story, stream, wipe


def drain(engine: Engine, *, batch_size: int, extra: tuple[Reaction, ...] = ()) -> None:
    reactions = (*standard_reactions(make_settings()), *extra)
    result = Worker(engine=engine, batch_size=batch_size, reactions=reactions).drain()
    assert (result.retrying, result.dead) == (0, 0)


@contextmanager
def alert_statements(engine: Engine) -> Iterator[list[str]]:
    """The statements about the alert table sent to the database meanwhile, each as
    "INSERT" or "SELECT"."""
    seen: list[str] = []

    def count(conn, cursor, statement, parameters, context, executemany) -> None:  # noqa: ANN001
        words = statement.split(None, 4)
        if words[:3] == ["INSERT", "INTO", "alert"]:
            seen.append("INSERT")
        elif words[:1] == ["SELECT"] and " FROM alert " in f"{statement} ":
            seen.append("SELECT")

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


@pytest.mark.parametrize("batch_size", [3, 7, 1000])
def test_batches_of_any_size_alert_exactly_as_one_event_per_transaction(engine, batch_size):
    events = stream()
    receive_events(engine, events)
    drain(engine, batch_size=1)
    one_by_one = snapshot(engine)
    wipe(engine)

    receive_events(engine, events)
    with alert_statements(engine) as statements:
        drain(engine, batch_size=batch_size)
    assert snapshot(engine) == one_by_one
    alerts, outbox = one_by_one
    assert [alert_id for alert_id, *_ in alerts] == sorted(alert_id for alert_id, *_ in alerts)
    assert {m[4] for m in outbox} <= {alert_id for alert_id, *_ in alerts}
    if batch_size == 1000:  # one batch: alerts are written in rounds, not one by one (this
        # stream develops most alerts in the batch that opened them: a round each time)
        assert statements.count("INSERT") < len(alerts)
        assert statements.count("SELECT") <= 1  # subjects the batch created are never read


class FailOnce:
    """A reaction that raises the first time it sees `event_type`, after the alerts reaction
    has opened (and kept) the batch's alerts so far: the batch rolls back and is applied
    again one event per transaction."""

    def __init__(self, event_type: str) -> None:
        self.event_type, self.failed = event_type, False

    def __call__(self, session: Any, applied: AppliedEvent) -> None:
        if applied.event.type == self.event_type and not self.failed:
            self.failed = True
            raise RuntimeError("a reaction failed")


def test_a_failed_batch_leaves_nothing_of_its_kept_alerts(engine):
    events = stream()
    receive_events(engine, events)
    drain(engine, batch_size=1)
    one_by_one = snapshot(engine)
    wipe(engine)

    receive_events(engine, events)
    failing = FailOnce("customer.subscription.deleted")
    drain(engine, batch_size=1000, extra=(failing,))
    assert failing.failed
    if engine.dialect.name == "sqlite":
        assert snapshot(engine) == one_by_one
    else:  # a rolled-back batch used sequence values (as it always did): compare without ids
        assert without_ids(snapshot(engine)) == without_ids(one_by_one)


def without_ids(snap: tuple[list[tuple], list[tuple]]) -> tuple[list[tuple], list[tuple]]:
    alerts, outbox = snap
    ids = {alert[0]: rank for rank, alert in enumerate(alerts)}
    return (
        [alert[1:] for alert in alerts],
        [
            (operation, kind, status, ids[alert_id], channel)
            for _, operation, kind, status, alert_id, _, channel in outbox
        ],  # fmt: skip
    )


class RivalOpener:
    """Another transaction (its own connection, in a thread) opens the incident of the first
    failed payment right after this batch's alerts reaction opened (and kept) it: it inserts
    the alert, lets the batch go on, and commits half a second later, while the batch is
    writing its own alert of that incident and has to wait for it."""

    def __init__(self, url: str, event_type: str, incident: str) -> None:
        self.event_type, self.incident = event_type, incident
        self.engine = make_engine(url)
        self.inserted = threading.Event()
        self.thread: threading.Thread | None = None
        self.alert_id: int | None = None
        self.key: str | None = None
        self.subject_id: str | None = None

    def __call__(self, session: Any, applied: AppliedEvent) -> None:
        if applied.event.type != self.event_type or self.thread is not None:
            return
        self.subject_id = applied.event.object_id
        self.key = self.incident.format(subject=self.subject_id, **applied.event.object)
        self.thread = threading.Thread(target=self._open)
        self.thread.start()
        assert self.inserted.wait(10)

    def _open(self) -> None:
        now = utcnow()
        with self.engine.connect() as connection:
            values = {
                "incident_key": self.key,
                "kind": AlertKind.PAYMENT_FAILED if "payment" in self.key else AlertKind.REFUND,
                "state": "open",
                "subject_id": self.subject_id,
                "livemode": False,
                "channel": "#rival",
                "facts": {},
                "revision": 0,
                "event_id": "evt_rival",
                "last_event_id": "evt_rival",
                "collapsed": False,
                "created_at": now,
                "updated_at": now,
            }
            table = Alert.__table__
            self.alert_id = connection.execute(
                table.insert().values(values).returning(table.c.id)
            ).scalar_one()
            self.inserted.set()
            threading.Event().wait(0.5)
            connection.commit()


@pytest.mark.parametrize(
    ("event_type", "incident", "developed"),
    [
        ("invoice.payment_failed", "payment_failed:{subject}", True),  # asked about again
        ("charge.refunded", "refund:{subject}:{amount_refunded}", False),  # written at commit
    ],
)
def test_an_incident_another_transaction_opens_meanwhile_keeps_its_one_alert(
    postgres_url, caplog, event_type, incident, developed
):
    engine = make_engine(postgres_url)
    events = story(0, 1_700_000_000)
    receive_events(engine, events[:3])  # the customer, its subscription and the invoice are stored
    drain(engine, batch_size=1000)
    receive_events(engine, events[3:])
    rival = RivalOpener(postgres_url, event_type, incident)
    try:
        drain(engine, batch_size=1000, extra=(rival,))
    finally:
        if rival.thread is not None:
            rival.thread.join()
        rival.engine.dispose()
    assert "stripe.batch.split" not in caplog.text  # the batch did not fall back
    key = rival.key
    with read_scope(engine) as session:
        alerts = [
            (a.id, a.incident_key, a.channel, a.event_id, a.state, a.revision)
            for a in session.exec(select(Alert).order_by(Alert.id)).scalars()
        ]
        outbox = [
            (m.alert_id, m.operation)
            for m in session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).scalars()
        ]
    engine.dispose()
    incident = [alert for alert in alerts if alert[1] == key]
    assert [alert[:4] for alert in incident] == [(rival.alert_id, key, "#rival", "evt_rival")]
    # The batch posted no alert of its own; its later events developed the rival's.
    about_it = {operation for alert_id, operation in outbox if alert_id == rival.alert_id}
    if developed:
        assert incident[0][4] == "recovered" and incident[0][5] >= 2
        assert about_it == {Operation.UPDATE, Operation.REPLY}
    else:
        assert incident[0][4:] == ("open", 0) and about_it == set()
    assert {alert_id for alert_id, _ in outbox} <= {alert[0] for alert in alerts}
    posted = {alert_id for alert_id, operation in outbox if operation == Operation.POST}
    assert posted == {alert[0] for alert in alerts if alert[0] != rival.alert_id}


def test_a_batch_opening_alerts_it_does_not_develop_writes_them_in_one_statement(engine):
    events = []
    for number in range(8):  # eight customers' first failed payment each
        mine = story(number, 1_700_000_000 + 2 * number)
        first_failure = next(i for i, e in enumerate(mine) if e["type"] == "invoice.payment_failed")
        events += mine[: first_failure + 1]
    receive_events(engine, events)
    drain(engine, batch_size=1)
    one_by_one = snapshot(engine)
    wipe(engine)

    receive_events(engine, events)
    with alert_statements(engine) as statements:
        drain(engine, batch_size=1000)
    assert snapshot(engine) == one_by_one
    assert len(one_by_one[0]) == 8
    assert statements == ["INSERT"]


def late_charges(number: int, start: int) -> list[dict[str, Any]]:
    """Two failed attempts of an invoice whose payloads name their charge (before basil) before
    the charge is stored: each `charge.failed` arrives a second after its invoice event, and the
    second attempt's never does."""
    version = f.API_VERSIONS[number % 2]
    person = f.customer(api_version=version, email=f"late{number}@example.com")
    cus, invoice_id, intent = person["id"], f.new_id("in"), f.new_id("pi")
    events = [f.event("customer.created", person, created=start, api_version=version)]
    for attempt in (1, 2):
        charge = f.charge(api_version=version, customer=cus, amount=3000, payment_intent=intent,
                          invoice=invoice_id, status="failed", failure_code="card_declined",
                          failure_message="Declined.", created=start + 2 * attempt)  # fmt: skip
        failed = f.invoice(api_version=version, customer=cus, id=invoice_id, amount_due=3000,
                           payment_intent=intent, charge=charge["id"], attempt_count=attempt,
                           created=start)  # fmt: skip
        at = start + 2 * attempt
        events.append(f.event("invoice.payment_failed", failed, created=at, api_version=version))
        if attempt == 1:
            events.append(f.event("charge.failed", charge, created=at + 1, api_version=version))
    return events


@pytest.mark.parametrize("batch_size", [2, 1000])
def test_a_charge_named_before_it_is_stored_alerts_as_one_event_per_transaction(engine, batch_size):
    """The batch knows the named charge is missing (it locked or read that id) and says so
    without asking the database (`handlers.alerts.facts.stored_row`), as the database would."""
    events = sorted(
        (e for n in range(4) for e in late_charges(n, 1_700_000_000 + n)),
        key=lambda e: e["created"],
    )
    receive_events(engine, events)
    drain(engine, batch_size=1)
    one_by_one = snapshot(engine)
    wipe(engine)

    receive_events(engine, events)
    drain(engine, batch_size=batch_size)
    assert snapshot(engine) == one_by_one
    alerts, _ = one_by_one
    assert len(alerts) == 4
    reasons = {alert[5].get("decline_reason") for alert in alerts}
    assert reasons == {"Declined. (card_declined)"}  # the second attempt found the first charge

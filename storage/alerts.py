"""Queries for alerts. Keyword-only; the caller owns the session (one unit of work).

**What the worker's unit of work knows about alerts.** Every alerting event asks "has this
incident an alert?" (and a cancellation asks for the subject's latest one). Answering
with a query each time was most of the alert reaction's cost, so the worker's unit of work
reads the alerts of the subjects it holds (the invoices, subscriptions and charges its batch
is about, `storage/held_rows.py`) with one query, the first time it asks about one it does
not know yet (a round: rows loaded since the last one join the next), and remembers the
alerts it opens (`session.info`, reset with each transaction). A subject it created has no
alerts but its own, whether or not it was flushed since (so it is never read). The answers
stay exact for the rest of the transaction: a subject's alerts are only ever written by a
worker applying an event about that subject, and the subject's row is locked by this
transaction (or was inserted by it), so no other transaction can add one meanwhile; and an
alert's `incident_key` and `subject_id` are written together, from one development.
Subjects the unit of work does not hold (a reaction run outside the worker) are asked about
with a query, as before.

**Alerts the unit of work opens are written together.** An alert about a subject it knows
is kept in memory (`open_alert`) and written with the others it opened since, in one
multi-row `INSERT ... ON CONFLICT (incident_key) DO NOTHING RETURNING` (`write_opened`):
before the transaction next asks about that subject's alerts, before it writes an outbox row
(`storage.outbox.before_writing_queued`: an alert's post is queued once its id is known, so
outbox ids keep the order of events), and at commit. Ids still increase in the order the
alerts were opened. An incident another transaction opened meanwhile (the guarantee above
makes that a bug elsewhere, but it is still handled as an insert at once would) gets no
alert, no post and no memory here: its subject is asked about again, after the write.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import event, inspect
from sqlmodel import Session, col, select

from storage import held_rows
from storage.id_lists import is_one_of, on_postgresql
from storage.insert_once import insert_many_returning_keys, insert_values_ignoring_conflict
from storage.models.alerts import Alert
from storage.models.billing import Charge, Invoice, Subscription
from storage.outbox import before_writing_queued
from storage.transaction_memory import current_memory, transaction_memory

SUBJECT_MODELS = (Invoice, Subscription, Charge)  # what an alert can be about
SUBJECT_CHUNK = 500  # ids per IN (...) list
_KNOWN = "alerts.known"
_WATCHING = "alerts.watching_inserts"
_ALERT = Alert.__table__


def get_alert(*, session: Session, alert_id: int, for_update: bool = False) -> Alert | None:
    statement = select(Alert).where(Alert.id == alert_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def get_alert_by_incident(*, session: Session, incident_key: str) -> Alert | None:
    return session.exec(select(Alert).where(Alert.incident_key == incident_key)).first()


def latest_alert_for_subject(
    *, session: Session, subject_id: str, kinds: Iterable[str]
) -> Alert | None:
    statement = (
        select(Alert)
        .where(Alert.subject_id == subject_id, col(Alert.kind).in_(list(kinds)))
        .order_by(col(Alert.id).desc())
    )
    return session.exec(statement).first()


def open_alert(*, session: Session, values: dict[str, Any], then: Callable[[int], None]) -> None:
    """Insert a new incident's alert, given as column values, and call `then(id)` once it is
    in; `then` is not called when another transaction already opened the incident.

    `INSERT ... ON CONFLICT (incident_key) DO NOTHING RETURNING id` rather than a savepoint
    around an ORM add: the same one-incident-one-alert guarantee (on PostgreSQL a concurrent
    opener waits for the other's commit, then inserts nothing). An alert about a subject
    whose alerts the unit of work knows is kept and written with the others it opens, in one
    statement (`write_opened`), before the transaction next asks about that subject's alerts
    or writes an outbox row, and at the latest at commit; others are inserted at once. No
    ORM object is built: the unit of work remembers the new alert, and loads it only if asked
    for it."""
    known = _known(session)
    if values["subject_id"] in known.subjects:
        if not known.pending:
            before_writing_queued(session, write_opened)
        known.pending.append((values, then))
        known.pending_subjects.add(values["subject_id"])
        return
    alert_id = insert_values_ignoring_conflict(
        session=session, table=_ALERT, values=values, conflict_on="incident_key"
    )
    _opened(known, values, alert_id, then)


def write_opened(session: Session) -> None:
    """Write the alerts `open_alert` kept (in the order they were opened, so their ids
    increase in that order), and call their `then`s in that order."""
    known = current_memory(session, _KNOWN)
    if known is None or not known.pending:
        return
    pending, known.pending = known.pending, []
    known.pending_subjects.clear()
    ids = insert_many_returning_keys(
        session=session,
        table=_ALERT,
        rows=[values for values, _ in pending],
        conflict_on="incident_key",
    )
    for values, then in pending:
        _opened(known, values, ids.get(values["incident_key"]), then)


def _opened(
    known: _Known, values: dict[str, Any], alert_id: int | None, then: Callable[[int], None]
) -> None:
    subject_id = values["subject_id"]
    if alert_id is None:
        known.subjects.discard(subject_id)  # another transaction's alert: ask again
        known.lost.add(subject_id)
        return
    known.created.add(alert_id)
    if subject_id in known.subjects:
        opened = _Opened(id=alert_id, incident_key=values["incident_key"], kind=values["kind"])
        known.by_subject.setdefault(subject_id, {})[alert_id] = opened
    then(alert_id)


def incident_alert(*, session: Session, incident_key: str, subject_id: str) -> Alert | None:
    """The incident's alert, from what the unit of work knows (see the module docstring);
    `subject_id` is what the incident is about. Never flushes."""
    _write_subject_opened(session, subject_id)
    if _covers(session, subject_id):
        alerts = _known(session).by_subject.get(subject_id, {}).values()
        found = next((alert for alert in alerts if alert.incident_key == incident_key), None)
        return None if found is None else _loaded(session, subject_id, found)
    with session.no_autoflush:
        return get_alert_by_incident(session=session, incident_key=incident_key)


def latest_subject_alert(
    *, session: Session, subject_id: str, kinds: Iterable[str]
) -> Alert | None:
    """`latest_alert_for_subject` from what the unit of work knows. Never flushes."""
    _write_subject_opened(session, subject_id)
    if not _covers(session, subject_id):
        session.flush()  # alerts developed in this transaction, whose kind the query filters on
        return latest_alert_for_subject(session=session, subject_id=subject_id, kinds=kinds)
    wanted = set(kinds)
    alerts = _known(session).by_subject.get(subject_id, {}).values()
    found = max((a for a in alerts if a.kind in wanted), key=lambda a: a.id or 0, default=None)
    return None if found is None else _loaded(session, subject_id, found)


def created_in_transaction(session: Session, alert: Alert) -> bool:
    """True for an alert this transaction inserted: nothing else (a task, say) can refer to it
    yet, since no other transaction can see it."""
    known = current_memory(session, _KNOWN)
    return known is not None and alert.id in known.created


def _write_subject_opened(session: Session, subject_id: str) -> None:
    """Alerts opened and kept are written before their subject's alerts are asked about, so
    the answer is the one an insert at once would have given (another transaction's alert,
    not the one kept, when that one lost the incident)."""
    known = current_memory(session, _KNOWN)
    if known is not None and subject_id in known.pending_subjects:
        write_opened(session)


@dataclass(frozen=True, slots=True)
class _Opened:
    """An alert this transaction inserted, not loaded as an ORM object (yet)."""

    id: int
    incident_key: str
    kind: str


@dataclass(slots=True)
class _Known:
    transaction: object
    subjects: set[str] = field(default_factory=set)  # subjects whose alerts are all known
    by_subject: dict[str, dict[int, Alert | _Opened]] = field(default_factory=dict)  # by id
    created: set[int] = field(default_factory=set)  # ids of alerts this transaction inserted
    pending: list[tuple[dict[str, Any], Callable[[int], None]]] = field(default_factory=list)
    pending_subjects: set[str] = field(default_factory=set)  # subjects of `pending` alerts
    lost: set[str] = field(default_factory=set)  # subjects another transaction opened one of


def _known(session: Session) -> _Known:
    return transaction_memory(session, _KNOWN, _Known)


def _loaded(session: Session, subject_id: str, alert: Alert | _Opened) -> Alert:
    """The ORM object of a known alert: one this transaction opened is read once, by id (it
    is in the database already, so nothing needs flushing)."""
    if isinstance(alert, Alert):
        return alert
    with session.no_autoflush:
        row = session.get(Alert, alert.id)
    assert row is not None, "an alert this transaction inserted"
    _known(session).by_subject[subject_id][alert.id] = row
    return row


def _covers(session: Session, subject_id: str) -> bool:
    """Whether the unit of work knows all of the subject's alerts; reads, with one query,
    those of every held subject it does not know yet when this one is new to it."""
    known = _known(session)
    if subject_id in known.subjects:
        return True
    row = _held_subject(session, subject_id)
    if row is None:
        return False  # not the unit of work's own: ask the database each time
    if inspect(row).pending:  # inserted by this transaction: only its own alerts
        known.subjects.add(subject_id)
        return True
    if not session.info.get(_WATCHING):
        event.listen(session, "pending_to_persistent", _inserted)
        session.info[_WATCHING] = True
    wanted = {subject_id} | {
        obj.id
        for obj in session.identity_map.values()
        if type(obj) in SUBJECT_MODELS
        and obj.id not in known.subjects
        and held_rows.held_row(session, type(obj), obj.id) is obj
    }
    _read_subjects(session, known, sorted(wanted))
    return True


def _inserted(session: Session, row: object) -> None:
    """A row this transaction inserted was flushed: a subject among them has no alerts but
    the ones this transaction opened (as while it was pending), so it needs no read."""
    if type(row) in SUBJECT_MODELS:
        known = current_memory(session, _KNOWN)
        subject_id = row.id  # type: ignore[attr-defined]
        if (
            known is not None
            and subject_id not in known.lost
            and held_rows.held_row(session, type(row), subject_id) is row  # type: ignore[arg-type]
        ):
            known.subjects.add(subject_id)


def _held_subject(session: Session, subject_id: str) -> Invoice | Subscription | Charge | None:
    for model in SUBJECT_MODELS:
        row = held_rows.held_row(session, model, subject_id)
        if row is not None:
            return row
    return None


def _read_subjects(session: Session, known: _Known, subject_ids: list[str]) -> None:
    """On PostgreSQL in one query, the ids as one array parameter (`storage/id_lists.py`)."""
    postgresql = on_postgresql(session.connection())
    size = len(subject_ids) if postgresql else SUBJECT_CHUNK
    with session.no_autoflush:  # alerts are written with their own INSERT, never pending
        for first in range(0, len(subject_ids), size):
            chunk = subject_ids[first : first + size]
            subject = is_one_of(Alert.subject_id, None, postgresql=postgresql, values=chunk)
            for alert in session.exec(select(Alert).where(subject)):
                known.by_subject.setdefault(alert.subject_id, {})[alert.id] = alert
            known.subjects.update(chunk)


def record_alert_message(
    *,
    session: Session,
    alert_ids: Sequence[int],
    channel: str,
    ts: str,
    collapsed: bool,
    now: datetime,
) -> None:
    """Remember where Slack put the alert(s), so updates and thread replies can follow."""
    for alert in session.exec(select(Alert).where(col(Alert.id).in_(list(alert_ids)))):
        alert.message_channel, alert.message_ts, alert.collapsed = channel, ts, collapsed
        alert.updated_at = now
        session.add(alert)


def alerts_by_ids(*, session: Session, alert_ids: Sequence[int]) -> list[Alert]:
    statement = select(Alert).where(col(Alert.id).in_(list(alert_ids))).order_by(col(Alert.id))
    return list(session.exec(statement))


def latest_alerts(
    *, session: Session, limit: int = 20, customer_id: str | None = None
) -> list[Alert]:
    """Newest first: for the App Home and the customer lookup."""
    statement = (
        select(Alert).order_by(col(Alert.created_at).desc(), col(Alert.id).desc()).limit(limit)
    )
    if customer_id is not None:
        statement = statement.where(Alert.customer_id == customer_id)
    return list(session.exec(statement))

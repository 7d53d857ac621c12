"""Queries for alerts. Keyword-only; the caller owns the session (one unit of work)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlmodel import Session, col, select

from storage.insert_once import insert_ignoring_conflict
from storage.models.alerts import Alert


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


def insert_alert(*, session: Session, alert: Alert) -> Alert | None:
    """Insert a new incident's alert; None when another transaction already opened it.

    One `INSERT ... ON CONFLICT (incident_key) DO NOTHING RETURNING id` rather than a
    savepoint around an ORM add: the same one-incident-one-alert guarantee (on PostgreSQL a
    concurrent opener waits for the other's commit, then inserts nothing) at a third of the
    cost. `alert` becomes the session's persistent row."""
    alert_id = insert_ignoring_conflict(session=session, row=alert, conflict_on="incident_key")
    return None if alert_id is None else alert


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

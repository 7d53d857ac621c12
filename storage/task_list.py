"""Open follow-up tasks as `/tasks` and the App Home list them: with the customer's name and
where the alert's message is, in one query. Keyword-only; the caller owns the session."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.models.alerts import Alert
from storage.models.billing import Customer
from storage.models.tasks import Task, TaskStatus


@dataclass(frozen=True, slots=True)
class TaskRow:
    id: int
    title: str
    assignee: str
    due_date: date | None
    customer_id: str | None
    customer_name: str | None  # the name, else the email, else None
    alert_id: int | None
    alert_channel: str | None  # where Slack put the alert's message, once it is posted
    alert_ts: str | None


def open_task_rows(
    *, session: Session, assignee: str | None = None, limit: int = 20
) -> list[TaskRow]:
    """Open tasks, soonest due first (no due date last), optionally one person's."""
    statement = (
        select(
            Task.id,
            Task.title,
            Task.assignee,
            Task.due_date,
            Task.customer_id,
            Customer.name,
            Customer.email,
            Task.alert_id,
            Alert.message_channel,
            Alert.message_ts,
        )
        .join(Customer, col(Customer.id) == col(Task.customer_id), isouter=True)
        .join(Alert, col(Alert.id) == col(Task.alert_id), isouter=True)
        .where(Task.status == TaskStatus.OPEN)
        .order_by(col(Task.due_date).is_(None), col(Task.due_date), col(Task.id))
        .limit(limit)
    )
    if assignee is not None:
        statement = statement.where(Task.assignee == assignee)
    return [
        TaskRow(
            id=row[0],
            title=row[1],
            assignee=row[2],
            due_date=row[3],
            customer_id=row[4],
            customer_name=row[5] or row[6],
            alert_id=row[7],
            alert_channel=row[8],
            alert_ts=row[9],
        )
        for row in session.exec(statement)
    ]


def count_open_tasks(*, session: Session, assignee: str | None = None) -> int:
    statement = select(func.count()).select_from(Task).where(Task.status == TaskStatus.OPEN)
    if assignee is not None:
        statement = statement.where(Task.assignee == assignee)
    return int(session.exec(statement).one())

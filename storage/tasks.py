"""Follow-up tasks: keyword-only queries and changes, each writing its audit row and timeline line.

Every change goes through `_audit`, so "who did what, when" cannot be forgotten, and the
customer's timeline shows it (source key `task:{task_id}:{action}:{audit_id}`, unique).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel import Session, col, select

from storage.models.tasks import Task, TaskAction, TaskAudit, TaskStatus
from storage.models.timeline import TimelineEntry

TIMELINE_KIND = "task"
TIMELINE_TEXT = {
    TaskAction.CREATED: "Follow-up task created for {assignee}: {title}",
    TaskAction.TAKEN: "Follow-up task taken by {assignee}: {title}",
    TaskAction.REASSIGNED: "Follow-up task reassigned to {assignee}: {title}",
    TaskAction.DONE: "Follow-up task done: {title}",
    TaskAction.REOPENED: "Follow-up task reopened: {title}",
}


def create_task(
    *,
    session: Session,
    customer_id: str | None,
    alert_id: int | None,
    title: str,
    note: str | None,
    assignee: str,
    creator: str,
    due_date: date | None,
    now: datetime,
) -> Task:
    task = Task(
        customer_id=customer_id,
        alert_id=alert_id,
        title=title,
        note=note or None,
        assignee=assignee,
        creator=creator,
        due_date=due_date,
        created_at=now,
        updated_at=now,
    )
    session.add(task)
    session.flush()
    _audit(
        session=session,
        task=task,
        actor=creator,
        action=TaskAction.CREATED,
        now=now,
        detail={"assignee": assignee, "due_date": due_date.isoformat() if due_date else None},
    )
    return task


def get_task(*, session: Session, task_id: int, for_update: bool = False) -> Task | None:
    statement = select(Task).where(Task.id == task_id)
    if for_update:
        statement = statement.with_for_update()
    return session.exec(statement).first()


def open_task_for_alert(*, session: Session, alert_id: int) -> Task | None:
    """The alert's current follow-up: its newest open task."""
    statement = (
        select(Task)
        .where(Task.alert_id == alert_id, Task.status == TaskStatus.OPEN)
        .order_by(col(Task.id).desc())
    )
    return session.exec(statement).first()


def latest_task_for_alert(*, session: Session, alert_id: int) -> Task | None:
    statement = select(Task).where(Task.alert_id == alert_id).order_by(col(Task.id).desc())
    return session.exec(statement).first()


def open_tasks(
    *,
    session: Session,
    assignee: str | None = None,
    customer_id: str | None = None,
    alert_id: int | None = None,
    limit: int = 100,
) -> list[Task]:
    """Open tasks, soonest due first (no due date last); optionally one person's or one customer's."""
    statement = select(Task).where(Task.status == TaskStatus.OPEN)
    if assignee is not None:
        statement = statement.where(Task.assignee == assignee)
    if customer_id is not None:
        statement = statement.where(Task.customer_id == customer_id)
    if alert_id is not None:
        statement = statement.where(Task.alert_id == alert_id)
    statement = statement.order_by(
        col(Task.due_date).is_(None), col(Task.due_date), col(Task.id)
    ).limit(limit)
    return list(session.exec(statement))


def assign_task(
    *,
    session: Session,
    task: Task,
    assignee: str,
    actor: str,
    now: datetime,
    action: TaskAction = TaskAction.REASSIGNED,
) -> Task:
    previous = task.assignee
    task.assignee, task.updated_at = assignee, now
    session.add(task)
    _audit(
        session=session,
        task=task,
        actor=actor,
        action=action,
        now=now,
        detail={"from": previous, "to": assignee},
    )
    return task


def close_task(
    *, session: Session, task: Task, actor: str, now: datetime, reason: str | None = None
) -> Task:
    task.status, task.closed_at, task.closed_by, task.updated_at = TaskStatus.DONE, now, actor, now
    session.add(task)
    _audit(
        session=session,
        task=task,
        actor=actor,
        action=TaskAction.DONE,
        now=now,
        detail={"reason": reason} if reason else {},
    )
    return task


def reopen_task(*, session: Session, task: Task, actor: str, now: datetime) -> Task:
    task.status, task.closed_at, task.closed_by, task.updated_at = TaskStatus.OPEN, None, None, now
    session.add(task)
    _audit(session=session, task=task, actor=actor, action=TaskAction.REOPENED, now=now)
    return task


def audit_trail(*, session: Session, task_id: int) -> list[TaskAudit]:
    statement = select(TaskAudit).where(TaskAudit.task_id == task_id).order_by(col(TaskAudit.id))
    return list(session.exec(statement))


def _audit(
    *,
    session: Session,
    task: Task,
    actor: str,
    action: TaskAction,
    now: datetime,
    detail: dict[str, Any] | None = None,
) -> None:
    row = TaskAudit(task_id=task.id, actor=actor, action=action, detail=detail or {}, at=now)
    session.add(row)
    session.flush()
    if task.customer_id is None:
        return
    summary = TIMELINE_TEXT[action].format(assignee=f"<@{task.assignee}>", title=task.title)
    session.add(
        TimelineEntry(
            customer_id=task.customer_id,
            occurred_at=now,
            kind=TIMELINE_KIND,
            summary=summary,
            object_id=f"task:{task.id}",
            actor=actor,
            source_key=f"task:{task.id}:{action.value}:{row.id}",
        )
    )

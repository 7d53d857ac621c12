"""What the alert buttons and the task modal do, as plain functions of a session.

Every click is re-checked against the store: the alert must exist, the button must come
from that alert's own message, and the incident must still be open. Anything else raises
`ClickRefused` with the sentence the clicker sees (ephemerally); nothing is changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlmodel import Session

from handlers.alerts.incidents import bump
from handlers.alerts.render import card_for, task_info
from handlers.slack import blocks, copy
from handlers.slack.refs import AlertRef, InvalidRef, TaskModalRef
from storage.alerts import get_alert
from storage.models.alerts import Alert, AlertState
from storage.models.tasks import Task, TaskAction
from storage.models.timeline import TimelineEntry
from storage.tasks import assign_task, close_task, create_task, open_task_for_alert, open_tasks

DEFAULT_DUE_BUSINESS_DAYS = 2


class ClickRefused(Exception):
    """An expected refusal; `str(exc)` is what the user is told."""


@dataclass(frozen=True, slots=True)
class Click:
    user_id: str
    value: str | None
    channel_id: str | None = None
    message_ts: str | None = None


@dataclass(frozen=True, slots=True)
class TaskForm:
    title: str
    assignee: str
    due_date: date | None
    note: str | None


def add_business_days(start: date, days: int) -> date:
    """`days` working days after `start`, skipping Saturdays and Sundays."""
    current = start
    while days > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days -= 1
    return current


def _alert_for_click(session: Session, click: Click, *, for_update: bool) -> Alert:
    try:
        ref = AlertRef.decode(click.value)
    except InvalidRef as exc:
        raise ClickRefused(copy.STALE_BUTTON) from exc
    alert = get_alert(session=session, alert_id=ref.alert, for_update=for_update)
    if alert is None:
        raise ClickRefused(copy.ALERT_GONE)
    if alert.message_ts is None or (click.message_ts, click.channel_id) != (
        alert.message_ts,
        alert.message_channel,
    ):
        raise ClickRefused(copy.WRONG_MESSAGE)
    _still_open(alert)
    return alert


def _still_open(alert: Alert) -> None:
    if alert.state == AlertState.HANDLED:
        raise ClickRefused(copy.ALREADY_HANDLED.format(user=alert.handled_by))
    if alert.state == AlertState.RECOVERED:
        raise ClickRefused(copy.ALREADY_RECOVERED)
    if alert.customer_id is None:
        raise ClickRefused(copy.NO_CUSTOMER)


def task_modal_for_alert(session: Session, click: Click, *, today: date) -> dict:
    """The modal to open for "Create follow-up task" (read only: nothing is stored yet)."""
    alert = _alert_for_click(session, click, for_update=False)
    card = card_for(session, alert)
    return blocks.task_modal(
        ref=TaskModalRef(alert=alert.id),
        about=blocks.summary_line(card),
        title=blocks.default_task_title(card),
        assignee=click.user_id,
        due=add_business_days(today, DEFAULT_DUE_BUSINESS_DAYS),
    )


def submit_task(
    session: Session, ref: TaskModalRef, form: TaskForm, *, user_id: str, now: datetime
) -> Task:
    """Store the modal's task; for an alert, reply in its thread and show the task on it."""
    if ref.alert is None:
        return create_task(
            session=session,
            customer_id=ref.customer,
            alert_id=None,
            title=form.title,
            note=form.note,
            assignee=form.assignee,
            creator=user_id,
            due_date=form.due_date,
            now=now,
        )
    alert = get_alert(session=session, alert_id=ref.alert, for_update=True)
    if alert is None:
        raise ClickRefused(copy.ALERT_GONE)
    _still_open(alert)
    task = create_task(
        session=session,
        customer_id=alert.customer_id,
        alert_id=alert.id,
        title=form.title,
        note=form.note,
        assignee=form.assignee,
        creator=user_id,
        due_date=form.due_date,
        now=now,
    )
    reply = blocks.task_reply(task_info(task), actor=user_id)
    bump(session, alert, reply=reply, now=now, reply_key=f"alert:{alert.id}:task:{task.id}:created")
    return task


def assign_to_me(session: Session, click: Click, *, today: date, now: datetime) -> Task:
    """Take the alert's open task, or create one owned by the clicker, in one click."""
    alert = _alert_for_click(session, click, for_update=True)
    task = open_task_for_alert(session=session, alert_id=alert.id)
    if task is not None and task.assignee == click.user_id:
        raise ClickRefused(copy.ALREADY_YOURS)
    if task is not None:
        assign_task(
            session=session,
            task=task,
            assignee=click.user_id,
            actor=click.user_id,
            now=now,
            action=TaskAction.TAKEN,
        )
        reply, key = blocks.task_reply(task_info(task), actor=click.user_id, taken=True), "taken"
    else:
        task = create_task(
            session=session,
            customer_id=alert.customer_id,
            alert_id=alert.id,
            title=blocks.default_task_title(card_for(session, alert)),
            note=None,
            assignee=click.user_id,
            creator=click.user_id,
            due_date=add_business_days(today, DEFAULT_DUE_BUSINESS_DAYS),
            now=now,
        )
        reply, key = blocks.task_reply(task_info(task), actor=click.user_id), "created"
    bump(
        session,
        alert,
        reply=reply,
        now=now,
        reply_key=f"alert:{alert.id}:task:{task.id}:{key}:{alert.revision}",
    )
    return task


def mark_handled(session: Session, click: Click, *, now: datetime) -> Alert:
    """Close the incident: the alert shows who handled it and when; its open tasks are done."""
    alert = _alert_for_click(session, click, for_update=True)
    alert.state, alert.handled_by, alert.handled_at = AlertState.HANDLED, click.user_id, now
    for task in open_tasks(session=session, alert_id=alert.id):
        close_task(session=session, task=task, actor=click.user_id, now=now, reason="alert handled")
    if alert.customer_id:
        session.add(
            TimelineEntry(
                customer_id=alert.customer_id,
                occurred_at=now,
                kind="alert_handled",
                summary=f"{copy.TITLES.get(alert.kind, alert.kind)} marked handled",
                object_id=f"alert:{alert.id}",
                actor=click.user_id,
                source_key=f"alert:{alert.id}:handled",
            )
        )
    bump(session, alert, reply=None, now=now)
    return alert

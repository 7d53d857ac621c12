"""Task nudges: each morning, a direct message to every assignee with open follow-up tasks
due today or overdue (in `BILLBOT_TIMEZONE`), each with a Done button.

One DM per assignee per local day (posted key `task-nudge:{user}:{date}`), sent through the
outbox as `chat.postMessage` with the user id as channel, which opens the bot's DM with them.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime

from sqlalchemy import Engine
from sqlmodel import Session

from bot.settings import Settings
from handlers.alerts.followup import ClickRefused
from handlers.jobs import Hook, JobResult, post_once
from handlers.slack import copy
from handlers.slack.job_blocks import NudgeEntry, nudge_message, plural
from handlers.slack.refs import InvalidRef, TaskRef
from storage.db import read_scope
from storage.models.tasks import Task, TaskStatus
from storage.reminders import customer_names, tasks_due
from storage.tasks import close_task, get_task

JOB = "task-nudges"
TASK_GONE = "That task no longer exists, so nothing changed."
ALREADY_DONE = "That task was already done (<@{user}>), so nothing changed."
DONE_REASON = "done from the morning nudge"


def nudge_key(assignee: str, day: str) -> str:
    return f"task-nudge:{assignee}:{day}"


def send_task_nudges(
    *, engine: Engine, settings: Settings, now: datetime, after_enqueue: Hook | None = None
) -> JobResult:
    result = JobResult(JOB)
    today = now.astimezone(settings.timezone).date()
    with read_scope(engine) as session:
        by_assignee = _due_by_assignee(session, today)
    for assignee, entries in by_assignee.items():
        try:
            posted = post_once(
                engine=engine,
                job=JOB,
                items=[(nudge_key(assignee, today.isoformat()), entries)],
                build=lambda chosen: nudge_message(chosen[0], today=today),
                channel=assignee,
                now=now,
                after_enqueue=after_enqueue,
            )
        except Exception as exc:  # one assignee's trouble must not hold up the others
            result.fail(assignee, exc)
            continue
        if posted:
            result.posted.append(f"DM to {assignee} with {plural(len(entries), 'task')}")
        else:
            result.skipped.append(f"{assignee} was already nudged on {today.isoformat()}")
    return result


def _due_by_assignee(session: Session, today: date) -> dict[str, list[NudgeEntry]]:
    tasks = tasks_due(session=session, on_or_before=today)
    names = customer_names(
        session=session, customer_ids=[t.customer_id for t in tasks if t.customer_id]
    )
    by_assignee: dict[str, list[NudgeEntry]] = defaultdict(list)
    for task in tasks:
        if task.id is None or task.due_date is None:
            continue
        by_assignee[task.assignee].append(
            NudgeEntry(
                task_id=task.id,
                title=task.title,
                due_date=task.due_date,
                customer=names.get(task.customer_id or ""),
                customer_id=task.customer_id,
            )
        )
    return by_assignee


def complete_task_from_nudge(
    session: Session, *, value: str | None, user_id: str, now: datetime
) -> Task:
    """The Done button: close the task (with its audit row and timeline line)."""
    try:
        ref = TaskRef.decode(value)
    except InvalidRef as exc:
        raise ClickRefused(copy.STALE_BUTTON) from exc
    task = get_task(session=session, task_id=ref.task, for_update=True)
    if task is None:
        raise ClickRefused(TASK_GONE)
    if task.status == TaskStatus.DONE:
        raise ClickRefused(ALREADY_DONE.format(user=task.closed_by))
    return close_task(session=session, task=task, actor=user_id, now=now, reason=DONE_REASON)

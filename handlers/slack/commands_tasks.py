"""`/tasks [all | @user]` and its Done / Reassign controls (also used on the App Home).

A click is re-checked against the store: the task must exist and still be open. Closing
or reassigning writes the task's audit row (storage/tasks.py), and when the task came from
an alert, queues the alert's re-rendered message through the outbox (`bump`), so the alert
shows who owns the follow-up now, or that it is done.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from sqlmodel import Session

from handlers.alerts.incidents import bump
from handlers.slack import command_copy as words
from handlers.slack.command_ids import Command, CommandAction, TaskRef, TaskScope
from handlers.slack.commands import Gone, Reply, Usage, answering, mentioned_user
from handlers.slack.deps import SlackDeps
from handlers.slack.home import publish_home
from handlers.slack.mrkdwn import clip, esc
from handlers.slack.refs import InvalidRef
from handlers.slack.task_blocks import MAX_TASKS_IN_MESSAGE, Message, task_list_message
from storage.alerts import get_alert
from storage.db import read_scope, session_scope
from storage.models.tasks import Task, TaskAction, TaskStatus
from storage.task_list import count_open_tasks, open_task_rows
from storage.tasks import assign_task, close_task, get_task

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TaskList:
    scope: TaskScope
    user: str | None  # whose list: the caller (MINE) or the one mentioned (USER)


def parse_tasks_text(text: str, *, caller: str) -> TaskList:
    """`` / `mine` -> the caller's; `all`; `<@U123|name>` -> theirs; anything else: usage."""
    cleaned = text.strip()
    if cleaned.lower() in ("", "mine", "me"):
        return TaskList(TaskScope.MINE, caller)
    if cleaned.lower() == "all":
        return TaskList(TaskScope.ALL, None)
    user = mentioned_user(cleaned)
    if user is None:
        raise Usage(words.TASKS_USAGE)
    return TaskList(TaskScope.MINE, caller) if user == caller else TaskList(TaskScope.USER, user)


def task_list(
    session: Session,
    wanted: TaskList,
    *,
    today: date,
    team_domain: str | None = None,
    note: str | None = None,
) -> Message:
    assignee = None if wanted.scope is TaskScope.ALL else wanted.user
    rows = open_task_rows(session=session, assignee=assignee, limit=MAX_TASKS_IN_MESSAGE)
    total = (
        count_open_tasks(session=session, assignee=assignee)
        if len(rows) >= MAX_TASKS_IN_MESSAGE
        else len(rows)
    )
    return task_list_message(
        rows,
        total=total,
        scope=wanted.scope,
        user=wanted.user,
        today=today,
        team_domain=team_domain,
        note=note,
    )


def _open_task(session: Session, ref: TaskRef) -> Task:
    task = get_task(session=session, task_id=ref.task, for_update=True)
    if task is None:
        raise Gone(words.TASK_GONE)
    if task.status != TaskStatus.OPEN:
        raise Gone(words.TASK_ALREADY_DONE.format(user=task.closed_by))
    return task


def mark_done(session: Session, ref: TaskRef, *, actor: str, now: datetime) -> Task:
    task = close_task(session=session, task=_open_task(session, ref), actor=actor, now=now)
    _show_on_alert(session, task, now=now)
    return task


def reassign(session: Session, ref: TaskRef, *, assignee: str, actor: str, now: datetime) -> Task:
    task = _open_task(session, ref)
    if task.assignee == assignee:
        raise Gone(words.TASK_SAME_ASSIGNEE.format(user=assignee))
    assign_task(
        session=session,
        task=task,
        assignee=assignee,
        actor=actor,
        now=now,
        action=TaskAction.REASSIGNED,
    )
    _show_on_alert(session, task, now=now)
    return task


def _show_on_alert(session: Session, task: Task, *, now: datetime) -> None:
    """The alert's message shows its follow-up: queue its new rendering (no thread reply)."""
    if task.alert_id is None:
        return
    alert = get_alert(session=session, alert_id=task.alert_id, for_update=True)
    if alert is not None:
        bump(session, alert, reply=None, now=now)


def on_home(body: dict[str, Any]) -> bool:
    return (body.get("view") or {}).get("type") == "home"


def _ref_of(body: dict[str, Any], *, from_block: bool) -> TaskRef:
    action = (body.get("actions") or [{}])[0]
    try:
        return TaskRef.decode(action.get("block_id") if from_block else action.get("value"))
    except InvalidRef as exc:
        raise Gone(words.STALE) from exc


def register(app: App, deps: SlackDeps) -> None:
    def show_again(reply: Reply, body: dict[str, Any], ref: TaskRef, note: str) -> None:
        """The list the click came from, as it is now: republished on the App Home,
        else replacing the ephemeral `/tasks` answer."""
        if ref.scope is TaskScope.HOME or on_home(body):
            return  # `refreshing_home` republishes the tab
        wanted = TaskList(ref.scope, reply.user_id if ref.scope is TaskScope.MINE else ref.user)
        with read_scope(deps.engine) as session:
            message = task_list(
                session,
                wanted,
                today=deps.today(),
                team_domain=(body.get("team") or {}).get("domain"),
                note=note,
            )
        reply.private(message["text"], message["blocks"], replace=True)

    @contextmanager
    def refreshing_home(reply: Reply, body: dict[str, Any]) -> Iterator[None]:
        """A click on the App Home is answered by the tab itself, shown as it now is,
        whether the click changed something or was refused."""
        try:
            yield
        finally:
            if on_home(body):
                with answering(reply, what="home"):
                    publish_home(reply.client, deps, user_id=reply.user_id)

    @app.command(Command.TASKS.value)
    def tasks_command(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        reply = Reply.to(body, client, respond)
        with answering(reply, what="tasks"):
            wanted = parse_tasks_text(body.get("text") or "", caller=reply.user_id)
            with read_scope(deps.engine) as session:
                message = task_list(
                    session, wanted, today=deps.today(), team_domain=body.get("team_domain")
                )
            reply.private(message["text"], message["blocks"])

    @app.action(CommandAction.TASK_DONE.value)
    def done_clicked(
        ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond | None
    ) -> None:
        ack()
        reply = Reply.to(body, client, respond)
        with refreshing_home(reply, body), answering(reply, what="task_done"):
            ref = _ref_of(body, from_block=False)
            with session_scope(deps.engine) as session:
                task = mark_done(session, ref, actor=reply.user_id, now=deps.clock())
                title, task_id = task.title, task.id
            logger.info("slack.task.done", extra={"task_id": task_id})
            show_again(reply, body, ref, words.TASK_DONE_NOTE.format(title=esc(clip(title, 200))))

    @app.action(CommandAction.TASK_REASSIGN.value)
    def reassign_picked(
        ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond | None
    ) -> None:
        ack()
        reply = Reply.to(body, client, respond)
        with refreshing_home(reply, body), answering(reply, what="task_reassign"):
            ref = _ref_of(body, from_block=True)
            assignee = (body.get("actions") or [{}])[0].get("selected_user")
            if not isinstance(assignee, str) or not assignee:
                raise Gone(words.STALE)
            with session_scope(deps.engine) as session:
                task = reassign(
                    session, ref, assignee=assignee, actor=reply.user_id, now=deps.clock()
                )
                title, task_id = task.title, task.id
            logger.info("slack.task.reassigned", extra={"task_id": task_id})
            note = words.TASK_REASSIGNED_NOTE.format(user=assignee, title=esc(clip(title, 200)))
            show_again(reply, body, ref, note)

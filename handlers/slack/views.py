"""The task modal's submission: validate, store the task, close the modal.

Problems with the input come back as inline errors on the modal (`response_action:
errors`), which is also how a submission for an alert that was handled meanwhile is told.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from slack_bolt import Ack, App

from handlers.alerts import followup
from handlers.alerts.followup import ClickRefused, TaskForm
from handlers.slack import copy
from handlers.slack.deps import SlackDeps
from handlers.slack.ids import CallbackId, TaskModalBlock
from handlers.slack.refs import InvalidRef, TaskModalRef
from storage.db import session_scope

logger = logging.getLogger(__name__)


def read_task_form(view: dict[str, Any], *, today: date) -> tuple[TaskForm | None, dict[str, str]]:
    """The modal's values, or the errors to show next to its inputs."""
    values = (view.get("state") or {}).get("values") or {}

    def field(block: TaskModalBlock) -> dict[str, Any]:
        return (values.get(block.value) or {}).get(block.action_id) or {}

    title = (field(TaskModalBlock.TITLE).get("value") or "").strip()
    assignee = field(TaskModalBlock.ASSIGNEE).get("selected_user")
    note = (field(TaskModalBlock.NOTE).get("value") or "").strip()
    errors: dict[str, str] = {}
    if not title:
        errors[TaskModalBlock.TITLE.value] = copy.M_ERR_TITLE
    if not isinstance(assignee, str) or not assignee:
        errors[TaskModalBlock.ASSIGNEE.value] = copy.M_ERR_ASSIGNEE
    due = _parse_date(field(TaskModalBlock.DUE).get("selected_date"))
    if due is not None and due < today:
        errors[TaskModalBlock.DUE.value] = copy.M_ERR_DUE_PAST
    if errors:
        return None, errors
    form = TaskForm(
        title=title[: copy.TASK_TITLE_MAX],
        assignee=assignee,
        due_date=due,
        note=note[: copy.TASK_NOTE_MAX] or None,
    )
    return form, {}


def _parse_date(raw: object) -> date | None:
    try:
        return date.fromisoformat(raw) if isinstance(raw, str) else None
    except ValueError:
        return None


def register(app: App, deps: SlackDeps) -> None:
    @app.view(CallbackId.TASK_MODAL.value)
    def task_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        form, errors = read_task_form(view, today=deps.today())
        if form is None:
            return ack(response_action="errors", errors=errors)
        try:
            ref = TaskModalRef.decode(view.get("private_metadata"))
            with session_scope(deps.engine) as session:
                task = followup.submit_task(
                    session, ref, form, user_id=body["user"]["id"], now=deps.clock()
                )
        except InvalidRef:
            return ack(
                response_action="errors", errors={TaskModalBlock.TITLE.value: copy.STALE_BUTTON}
            )
        except ClickRefused as refusal:
            return ack(response_action="errors", errors={TaskModalBlock.TITLE.value: str(refusal)})
        ack()
        logger.info("slack.task.created", extra={"task_id": task.id, "alert_id": task.alert_id})

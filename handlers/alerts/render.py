"""An alert row (plus its follow-up task) as the card the Block Kit builders render."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from handlers.slack import blocks
from handlers.slack.cards import AlertCard, AlertFacts, TaskInfo
from storage.alerts import created_in_transaction
from storage.models.alerts import Alert, AlertState
from storage.models.tasks import Task
from storage.tasks import latest_task_for_alert


def task_info(task: Task) -> TaskInfo:
    return TaskInfo(
        id=task.id or 0,
        title=task.title,
        assignee=task.assignee,
        due_date=task.due_date,
        status=task.status,
    )


def card_for(session: Session, alert: Alert) -> AlertCard:
    """An alert this transaction opened has no task yet (no one else can see it): no query."""
    has_task = alert.id and not created_in_transaction(session, alert)
    task = latest_task_for_alert(session=session, alert_id=alert.id) if has_task else None
    return AlertCard(
        alert_id=alert.id or 0,
        kind=alert.kind,
        state=alert.state,
        facts=AlertFacts.model_validate(alert.facts),
        task=task_info(task) if task else None,
        handled_by=alert.handled_by,
        handled_at=alert.handled_at,
        recovered_at=alert.recovered_at,
    )


def new_alert_card(*, alert_id: int, kind: str, facts: dict[str, Any]) -> AlertCard:
    """The card of an alert just opened (`card_for` without the row): open, no task (no one
    else can see it yet), neither handled nor recovered."""
    return AlertCard(
        alert_id=alert_id,
        kind=kind,
        state=AlertState.OPEN,
        facts=AlertFacts.model_validate(facts),
    )


def render_alert(session: Session, alert: Alert) -> blocks.Message:
    return blocks.alert_message(card_for(session, alert))

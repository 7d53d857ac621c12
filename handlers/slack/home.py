"""The App Home: published afresh from the store each time someone opens the tab.

Someone who may not use billbot sees a short notice and nothing else. The headline is
left out (not the whole tab) when the exchange-rate file cannot be read.
"""

from __future__ import annotations

import logging
from datetime import date, datetime
from typing import Any

from slack_bolt import App
from slack_sdk import WebClient
from sqlmodel import Session

from bot.settings import Settings
from handlers.alerts.render import card_for
from handlers.revenue.fx import FxRatesError
from handlers.revenue.headline import MrrHeadline, mrr_headline
from handlers.slack import blocks
from handlers.slack.access import AccessPolicy, Requester, notice_home
from handlers.slack.deps import SlackDeps
from handlers.slack.home_blocks import HOME_ALERTS, HOME_TASKS, AlertLine, home_view
from handlers.slack.task_blocks import message_link
from storage.alerts import latest_alerts
from storage.db import read_scope
from storage.models.alerts import Alert, AlertState
from storage.task_list import count_open_tasks, open_task_rows

logger = logging.getLogger(__name__)


def alert_line(session: Session, alert: Alert) -> AlertLine:
    card = card_for(session, alert)
    state, who = alert.state, alert.handled_by
    if state == AlertState.OPEN and card.task is not None and card.task.status == "open":
        state, who = "task", card.task.assignee
    link = (
        message_link(alert.message_channel, alert.message_ts)
        if alert.message_channel and alert.message_ts
        else None
    )
    return AlertLine(blocks.summary_line(card), state, who, alert.created_at, link)


def home_for(
    session: Session, *, user_id: str, settings: Settings, now: datetime, today: date
) -> dict[str, Any]:
    """The viewer's Home tab, from the store."""
    tasks = open_task_rows(session=session, assignee=user_id, limit=HOME_TASKS)
    total = (
        count_open_tasks(session=session, assignee=user_id)
        if len(tasks) >= HOME_TASKS
        else len(tasks)
    )
    alerts = [
        alert_line(session, alert) for alert in latest_alerts(session=session, limit=HOME_ALERTS)
    ]
    return home_view(
        headline=_headline(session, settings=settings, now=now),
        tasks=tasks,
        total_tasks=total,
        alerts=alerts,
        today=today,
        now=now,
    )


def _headline(session: Session, *, settings: Settings, now: datetime) -> MrrHeadline | None:
    try:
        return mrr_headline(session, now=now, settings=settings)
    except FxRatesError:
        logger.warning("slack.home.no_headline", extra={"reason": "fx_rates"})
        return None


def publish_home(client: WebClient, deps: SlackDeps, *, user_id: str) -> None:
    with read_scope(deps.engine) as session:
        view = home_for(
            session, user_id=user_id, settings=deps.settings, now=deps.clock(), today=deps.today()
        )
    client.views_publish(user_id=user_id, view=view)


def register(app: App, deps: SlackDeps) -> None:
    policy = AccessPolicy.from_settings(deps.settings)

    @app.event("app_home_opened")
    def home_opened(event: dict[str, Any], client: WebClient) -> None:
        if event.get("tab") != "home" or not event.get("user"):
            return  # the Messages tab also sends this event
        requester = Requester(event["user"], None)
        if not policy.allows(requester):
            logger.info("slack.access.refused", extra={"user_id": event["user"], "kind": "home"})
            client.views_publish(
                user_id=event["user"], view=notice_home(":lock: " + policy.refusal(requester))
            )
            return
        publish_home(client, deps, user_id=event["user"])
        logger.info("slack.home.published", extra={"user_id": event["user"]})

"""Alert buttons: thin Bolt listeners. Acknowledge, call `handlers.alerts.followup`, answer.

A refused click (stale, forged, already handled) gets an ephemeral sentence and changes
nothing. Messages to the channel (the updated alert, thread replies) go through the
outbox like every other message, so they are paced and survive a Slack outage.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from handlers.alerts import followup
from handlers.alerts.followup import Click, ClickRefused
from handlers.jobs.task_nudges import complete_task_from_nudge
from handlers.jobs.trial_reminders import trial_task_modal
from handlers.slack import job_blocks
from handlers.slack.deps import SlackDeps
from handlers.slack.ids import ActionId
from storage.db import read_scope, session_scope

logger = logging.getLogger(__name__)


def click_from(body: dict[str, Any]) -> Click:
    action = (body.get("actions") or [{}])[0]
    container = body.get("container") or {}
    return Click(
        user_id=body["user"]["id"],
        value=action.get("value"),
        channel_id=container.get("channel_id"),
        message_ts=container.get("message_ts"),
    )


def tell(client: WebClient, click: Click, text: str) -> None:
    if click.channel_id:
        client.chat_postEphemeral(channel=click.channel_id, user=click.user_id, text=text)


def register(app: App, deps: SlackDeps) -> None:
    @app.action(ActionId.CREATE_TASK.value)
    def create_task_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        click = click_from(body)
        try:
            with read_scope(deps.engine) as session:
                view = followup.task_modal_for_alert(session, click, today=deps.today())
        except ClickRefused as refusal:
            return tell(client, click, str(refusal))
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action(ActionId.ASSIGN_TO_ME.value)
    def assign_to_me_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        click = click_from(body)
        try:
            with session_scope(deps.engine) as session:
                task = followup.assign_to_me(session, click, today=deps.today(), now=deps.clock())
        except ClickRefused as refusal:
            return tell(client, click, str(refusal))
        logger.info("slack.task.assigned", extra={"task_id": task.id, "alert_id": task.alert_id})

    @app.action(ActionId.MARK_HANDLED.value)
    def mark_handled_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        click = click_from(body)
        try:
            with session_scope(deps.engine) as session:
                alert = followup.mark_handled(session, click, now=deps.clock())
        except ClickRefused as refusal:
            return tell(client, click, str(refusal))
        logger.info("slack.alert.handled", extra={"alert_id": alert.id})

    @app.action(ActionId.TRIAL_CREATE_TASK.value)
    def trial_task_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        click = click_from(body)
        try:
            with read_scope(deps.engine) as session:
                view = trial_task_modal(
                    session,
                    value=click.value,
                    user_id=click.user_id,
                    today=deps.today(),
                    zone=deps.settings.timezone,
                )
        except ClickRefused as refusal:
            return tell(client, click, str(refusal))
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action(ActionId.TASK_DONE.value)
    def task_done_clicked(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        click = click_from(body)
        try:
            with session_scope(deps.engine) as session:
                task = complete_task_from_nudge(
                    session, value=click.value, user_id=click.user_id, now=deps.clock()
                )
        except ClickRefused as refusal:
            return tell(client, click, str(refusal))
        logger.info("slack.task.done", extra={"task_id": task.id})
        message = body.get("message") or {}
        if click.channel_id and click.message_ts and message.get("blocks"):
            blocks = job_blocks.nudge_marked_done(
                message["blocks"], task_id=task.id or 0, user=click.user_id
            )
            client.chat_update(
                channel=click.channel_id,
                ts=click.message_ts,
                text=message.get("text", ""),
                blocks=blocks,
            )

    @app.action(ActionId.OPEN_IN_STRIPE.value)
    @app.action(ActionId.OPEN_INVOICE.value)
    def link_clicked(ack: Ack) -> None:
        ack()  # link buttons open in the browser; Slack still expects an acknowledgement

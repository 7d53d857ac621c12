"""The buttons of a real alert, one that a signed Stripe webhook produced, pressed through the
app's own `POST /slack/events` (Bolt, acknowledging before it works, as deployed): the task
modal round trip, "Mark handled", and forged clicks that must change nothing.
"""

from __future__ import annotations

import json
from datetime import date, timedelta

from sqlalchemy import select

from handlers.slack import copy
from handlers.slack.ids import ActionId, TaskModalBlock
from handlers.slack.refs import AlertRef
from storage.db import read_scope
from storage.models import Alert, OutboxMessage, Task, TaskAudit
from tests.e2e import story as life
from tests.e2e.harness import Billbot, SlackCall, chat_calls, running_billbot, wait_until
from tests.factories import NEW
from tests.slack.signing import block_actions, view_submission

CLICKER, ASSIGNEE = "U0ALICE", "U0BOB"
TRIGGER = "12345.98765.abcdef0123456789"


def button_value(bot: Billbot, post: SlackCall, action_id: str) -> str:
    """The value of a button as the message in Slack carries it now."""
    message = bot.slack.messages[post.channel][post.ts]
    for block in message["blocks"]:
        for element in block.get("elements", []):
            if element.get("action_id") == action_id:
                return element["value"]
    raise AssertionError(f"no {action_id} button on the message")


def click(bot: Billbot, post: SlackCall, action_id: str, *, value: str | None = None, **kw):
    payload = block_actions(
        action_id=action_id,
        value=value if value is not None else button_value(bot, post, action_id),
        user=CLICKER, channel=post.channel, message_ts=post.ts, trigger_id=TRIGGER,
    )  # fmt: skip
    return bot.slack_request(payload, **kw)


def submit_task(bot: Billbot, view: dict, *, title: str, due: date, note: str):
    values = {
        TaskModalBlock.TITLE: {"type": "plain_text_input", "value": title},
        TaskModalBlock.ASSIGNEE: {"type": "users_select", "selected_user": ASSIGNEE},
        TaskModalBlock.DUE: {"type": "datepicker", "selected_date": due.isoformat()},
        TaskModalBlock.NOTE: {"type": "plain_text_input", "value": note},
    }
    state = {block.value: {block.action_id: value} for block, value in values.items()}
    return bot.slack_request(view_submission(view=view, user=CLICKER, values=state))


def two_business_days_after(day: date) -> date:
    days = 0
    while days < 2:
        day += timedelta(days=1)
        days += day.weekday() < 5
    return day


def snapshot(engine) -> tuple:
    with read_scope(engine) as session:
        alerts = [a.model_dump() for a in session.execute(select(Alert)).scalars()]
        tasks = [t.model_dump() for t in session.execute(select(Task)).scalars()]
        outbox = session.execute(select(OutboxMessage.id)).scalars().all()
        return alerts, tasks, outbox


def stored(engine, model) -> list:
    with read_scope(engine) as session:
        rows = list(session.execute(select(model).order_by(model.id)).scalars())
        session.expunge_all()
        return rows


def alert_state(engine, alert_id: int) -> str | None:
    with read_scope(engine) as session:
        return session.execute(select(Alert.state).where(Alert.id == alert_id)).scalar_one_or_none()


def ephemerals(bot: Billbot, count: int) -> list[str]:
    calls = wait_until(
        lambda: (
            (found := bot.slack.calls_to("chat.postEphemeral")) and len(found) >= count and found
        ),
        what=f"{count} ephemeral messages",
    )
    return [call.params["text"] for call in calls]


def test_task_round_trip_from_a_webhook_alert_then_mark_handled_and_forgeries(engine):
    story = life.customer_life(NEW)
    with running_billbot(engine) as bot:
        for name in ("signup", "trial", "converted", "upgrade", "failed_1"):
            bot.happen(story.step(name).events)
        upgrade, failed = [c for c in chat_calls(bot.slack) if c.method == "post"][-2:]
        assert (
            failed.channel == bot.slack.channel_id("#collections")
            and "Payment failed" in failed.text
        )

        # "Create follow-up task" opens the modal, prefilled, for the person who clicked
        assert click(bot, failed, ActionId.CREATE_TASK).status_code == 200
        [opened] = wait_until(lambda: bot.slack.calls_to("views.open"), what="views.open")
        view = opened.json_param("view")
        inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
        assert opened.params["trigger_id"] == TRIGGER
        assert "Grace Hopper" in inputs[TaskModalBlock.TITLE]["initial_value"]
        assert inputs[TaskModalBlock.ASSIGNEE]["initial_user"] == CLICKER
        assert (
            inputs[TaskModalBlock.DUE]["initial_date"]
            == two_business_days_after(date.today()).isoformat()
        )

        # submitting stores the task, replies in the alert's thread, and shows the task on the alert
        due = date.today() + timedelta(days=7)
        response = submit_task(bot, opened.response["view"], title="Call Grace about her card", due=due,
                               note="She asked for a call on Tuesday")  # fmt: skip
        assert response.status_code == 200 and response.text == ""
        [task] = stored(engine, Task)
        [failed_alert] = [a for a in stored(engine, Alert) if a.message_ts == failed.ts]
        assert (task.customer_id, task.alert_id, task.assignee, task.creator, task.due_date, task.title) == (
            story.customer_id, failed_alert.id, ASSIGNEE, CLICKER, due, "Call Grace about her card",
        )  # fmt: skip
        before = len(chat_calls(bot.slack))
        bot.settle()
        update, reply = sorted(chat_calls(bot.slack)[before:], key=lambda c: c.method, reverse=True)
        assert (update.method, update.ts, reply.method, reply.ts) == (
            "update",
            failed.ts,
            "reply",
            failed.ts,
        )
        assert f"<@{CLICKER}> created a follow-up task for <@{ASSIGNEE}>" in reply.text
        assert f"|{due.isoformat()}>" in reply.text
        assert f"Follow-up task for <@{ASSIGNEE}>" in update.blocks

        # forged clicks: another alert's value on this message, an unknown alert, a bad signature
        unchanged = snapshot(engine), len(bot.slack.calls_to("chat.update"))
        [upgrade_alert] = [a for a in stored(engine, Alert) if a.message_ts == upgrade.ts]
        other = button_value(bot, upgrade, ActionId.MARK_HANDLED)  # a real value, of another alert
        assert AlertRef.decode(other).alert == upgrade_alert.id
        assert click(bot, failed, ActionId.MARK_HANDLED, value=other).status_code == 200
        assert (
            click(
                bot, failed, ActionId.MARK_HANDLED, value=AlertRef(alert=99_999).encode()
            ).status_code
            == 200
        )
        assert (
            click(bot, failed, ActionId.MARK_HANDLED, value='{"alert": "1 OR 1=1"}').status_code
            == 200
        )
        forged = click(bot, failed, ActionId.MARK_HANDLED, secret="not-the-signing-secret")
        assert forged.status_code == 401
        assert sorted(ephemerals(bot, 3)) == sorted(
            [copy.WRONG_MESSAGE, copy.ALERT_GONE, copy.STALE_BUTTON]
        )
        bot.settle()
        assert (snapshot(engine), len(bot.slack.calls_to("chat.update"))) == unchanged

        # "Mark handled" closes the incident: the alert says who, the task is done
        assert click(bot, failed, ActionId.MARK_HANDLED).status_code == 200
        wait_until(
            lambda: alert_state(engine, failed_alert.id) == "handled",
            what="the alert to be handled",
        )
        bot.settle()
        [handled] = [a for a in stored(engine, Alert) if a.id == failed_alert.id]
        assert handled.handled_by == CLICKER and handled.handled_at is not None
        assert [t.status for t in stored(engine, Task)] == ["done"]
        assert [(a.action, a.actor) for a in stored(engine, TaskAudit)] == [
            ("created", CLICKER),
            ("done", CLICKER),
        ]
        final = bot.slack.messages[failed.channel][failed.ts]
        assert f"Handled by <@{CLICKER}>" in json.dumps(final["blocks"])
        assert not any(e.get("action_id") == ActionId.MARK_HANDLED for b in final["blocks"]
                       for e in b.get("elements", []))  # fmt: skip

        # a stale click on the old button after that changes nothing either
        unchanged = snapshot(engine)
        click(bot, failed, ActionId.MARK_HANDLED, value=AlertRef(alert=failed_alert.id).encode())
        assert ephemerals(bot, 4)[-1] == copy.ALREADY_HANDLED.format(user=CLICKER)
        assert snapshot(engine) == unchanged
        assert [c.method for c in chat_calls(bot.slack)].count(
            "post"
        ) == 3  # no new top-level message

"""Buttons and the task modal end to end: signed requests through POST /slack/events (Starlette
TestClient, the real Bolt app), the store, the outbox sender, and the loopback Slack API."""

from __future__ import annotations

import json
import time
from datetime import date

import pytest
from slack_sdk import WebClient
from sqlmodel import select
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.sender import Sender, SenderConfig
from bot.slack_app import create_bolt_app, slack_route
from handlers.slack import copy
from handlers.slack.ids import ActionId, TaskModalBlock
from handlers.slack.refs import AlertRef, TaskModalRef
from storage.db import read_scope
from storage.models import Task, TaskAudit, TimelineEntry
from tests.slack.conftest import BOT_TOKEN
from tests.slack.factories import alerts, failed_payment, outbox_rows
from tests.slack.signing import block_actions, form_body, slack_headers, view_submission

CLICKER, ASSIGNEE, OTHER = "U0CLICKER", "U0ASSIGNEE", "U0OTHER"


@pytest.fixture
def web(engine, settings, slack_api, clock):
    client = WebClient(token=BOT_TOKEN, base_url=slack_api.base_url)
    bolt = create_bolt_app(
        settings, engine=engine, client=client, clock=clock, process_before_response=True
    )
    with TestClient(Starlette(routes=[slack_route(bolt)])) as http:
        yield http


@pytest.fixture
def sender(engine, slack_api, clock):
    return Sender(
        engine=engine,
        client=WebClient(token=BOT_TOKEN, base_url=slack_api.base_url, retry_handlers=[]),
        config=SenderConfig(channel_interval=0, poll=0.01),
        clock=clock,
    )


@pytest.fixture
def alert(engine, settings, sender):
    failed_payment(engine, settings, 1)
    sender.step()
    [posted] = alerts(engine)
    assert posted.message_ts is not None
    return posted


def click(http, alert, action_id, *, user=CLICKER, value=None, message_ts=None):
    payload = block_actions(
        action_id=action_id,
        value=value if value is not None else AlertRef(alert=alert.id).encode(),
        user=user,
        channel=alert.message_channel,
        message_ts=message_ts or alert.message_ts,
    )
    body = form_body(payload)
    return http.post("/slack/events", content=body, headers=slack_headers(body))


def submit(
    http,
    view,
    *,
    user=CLICKER,
    title="Call Acme about the card",
    assignee=ASSIGNEE,
    due="2026-12-02",
    note="They asked for a call",
):
    values = {
        TaskModalBlock.TITLE: {
            TaskModalBlock.TITLE.action_id: {"type": "plain_text_input", "value": title}
        },
        TaskModalBlock.ASSIGNEE: {
            TaskModalBlock.ASSIGNEE.action_id: {"type": "users_select", "selected_user": assignee}
        },
        TaskModalBlock.DUE: {
            TaskModalBlock.DUE.action_id: {"type": "datepicker", "selected_date": due}
        },
        TaskModalBlock.NOTE: {
            TaskModalBlock.NOTE.action_id: {"type": "plain_text_input", "value": note}
        },
    }
    body = form_body(
        view_submission(view=view, user=user, values={k.value: v for k, v in values.items()})
    )
    return http.post("/slack/events", content=body, headers=slack_headers(body))


def drain(sender):
    for _ in range(20):
        sender.step()


def stored(engine, model):
    with read_scope(engine) as session:
        rows = list(session.exec(select(model)))
        session.expunge_all()
        return rows


def ephemerals(slack_api):
    return [c.params["text"] for c in slack_api.calls_to("chat.postEphemeral")]


def test_button_modal_submission_thread_reply_and_update(web, engine, slack_api, sender, alert):
    assert click(web, alert, ActionId.CREATE_TASK).status_code == 200
    [opened] = slack_api.calls_to("views.open")
    view = opened.json_param("view")
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert opened.params["trigger_id"] == "13345224609.738474920.8088930838d88f008e0"
    assert TaskModalRef.decode(view["private_metadata"]) == TaskModalRef(alert=alert.id)
    assert inputs[TaskModalBlock.ASSIGNEE]["initial_user"] == CLICKER
    assert inputs[TaskModalBlock.DUE]["initial_date"] == "2026-12-01"  # Friday + two business days
    assert "Customer 1" in inputs[TaskModalBlock.TITLE]["initial_value"]

    response = submit(web, opened.response["view"])
    assert response.status_code == 200 and response.text == ""
    [task] = stored(engine, Task)
    assert (
        task.assignee,
        task.creator,
        task.due_date,
        task.alert_id,
        task.customer_id,
        task.note,
    ) == (ASSIGNEE, CLICKER, date(2026, 12, 2), alert.id, "cus_1", "They asked for a call")
    assert [a.action for a in stored(engine, TaskAudit)] == ["created"]
    assert [e.source_key.split(":")[:3] for e in stored(engine, TimelineEntry)] == [
        ["task", str(task.id), "created"]
    ]

    drain(sender)
    [reply] = [c for c in slack_api.calls_to("chat.postMessage") if c.params.get("thread_ts")]
    assert (
        reply.params["thread_ts"] == alert.message_ts
        and reply.params["channel"] == alert.message_channel
    )
    assert f"<@{CLICKER}> created a follow-up task for <@{ASSIGNEE}>" in reply.params["text"]
    assert "<!date^" in reply.params["text"] and "|2026-12-02>" in reply.params["text"]
    [update] = slack_api.calls_to("chat.update")
    assert update.params["ts"] == alert.message_ts
    assert f"Follow-up task for <@{ASSIGNEE}>" in json.dumps(update.params["blocks"])


def test_invalid_modal_input_is_shown_inline_and_stores_nothing(web, engine, slack_api, alert):
    click(web, alert, ActionId.CREATE_TASK)
    view = slack_api.calls_to("views.open")[0].response["view"]
    response = submit(web, view, title="   ", due="2026-11-01")
    assert response.json() == {
        "response_action": "errors",
        "errors": {TaskModalBlock.TITLE: copy.M_ERR_TITLE, TaskModalBlock.DUE: copy.M_ERR_DUE_PAST},
    }
    forged = {
        **view,
        "private_metadata": json.dumps({"alert": alert.id, "customer": "'; DROP TABLE task; --"}),
    }
    assert submit(web, forged).json()["errors"] == {TaskModalBlock.TITLE: copy.STALE_BUTTON}
    assert stored(engine, Task) == []


def test_assign_to_me_creates_then_takes_the_task(web, engine, slack_api, sender, alert):
    click(web, alert, ActionId.ASSIGN_TO_ME)
    [task] = stored(engine, Task)
    assert (task.assignee, task.creator, task.due_date) == (CLICKER, CLICKER, date(2026, 12, 1))
    click(web, alert, ActionId.ASSIGN_TO_ME)  # already theirs: told so, nothing changes
    assert ephemerals(slack_api) == [copy.ALREADY_YOURS]
    click(web, alert, ActionId.ASSIGN_TO_ME, user=OTHER)
    [task] = stored(engine, Task)
    assert task.assignee == OTHER
    assert [(a.action, a.actor) for a in stored(engine, TaskAudit)] == [
        ("created", CLICKER),
        ("taken", OTHER),
    ]
    drain(sender)
    replies = [
        c.params["text"]
        for c in slack_api.calls_to("chat.postMessage")
        if c.params.get("thread_ts")
    ]
    assert len(replies) == 2 and replies[1].startswith(
        f":raising_hand: <@{OTHER}> took the follow-up task"
    )


def test_mark_handled_closes_the_incident_once(web, engine, slack_api, sender, alert):
    click(web, alert, ActionId.ASSIGN_TO_ME)
    click(web, alert, ActionId.MARK_HANDLED, user=OTHER)
    [handled] = alerts(engine)
    assert (handled.state, handled.handled_by) == ("handled", OTHER)
    assert stored(engine, Task)[0].status == "done"
    rows_before = len(outbox_rows(engine))
    click(web, alert, ActionId.MARK_HANDLED)
    click(web, alert, ActionId.CREATE_TASK)
    assert ephemerals(slack_api) == [copy.ALREADY_HANDLED.format(user=OTHER)] * 2
    assert len(outbox_rows(engine)) == rows_before and slack_api.calls_to("views.open") == []
    drain(sender)
    last = slack_api.calls_to("chat.update")[-1]
    assert f"Handled by <@{OTHER}>" in json.dumps(last.params["blocks"])
    assert all(
        "url" in e for e in last.json_param("blocks")[-1]["elements"]
    )  # only link buttons remain


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("garbage", copy.STALE_BUTTON),
        ('{"alert": 999999}', copy.ALERT_GONE),
        ('{"alert": 1, "email": "x@y"}', copy.STALE_BUTTON),
    ],
)
def test_forged_or_stale_clicks_change_nothing(web, engine, slack_api, alert, value, expected):
    for action in (ActionId.CREATE_TASK, ActionId.ASSIGN_TO_ME, ActionId.MARK_HANDLED):
        assert click(web, alert, action, value=value).status_code == 200
    assert ephemerals(slack_api) == [expected] * 3
    assert stored(engine, Task) == [] and alerts(engine)[0].state == "open"


def test_a_button_replayed_on_another_message_is_refused(web, engine, slack_api, alert):
    click(web, alert, ActionId.MARK_HANDLED, message_ts="1700000000.999999")
    assert ephemerals(slack_api) == [copy.WRONG_MESSAGE] and alerts(engine)[0].state == "open"


@pytest.mark.parametrize("problem", ["wrong secret", "stale timestamp", "body changed"])
def test_bad_signatures_get_401_from_bolt(web, engine, slack_api, alert, problem):
    body = form_body(
        block_actions(
            action_id=ActionId.MARK_HANDLED,
            value=AlertRef(alert=alert.id).encode(),
            user=CLICKER,
            channel=alert.message_channel,
            message_ts=alert.message_ts,
        )
    )
    headers = slack_headers(body)
    if problem == "wrong secret":
        headers = slack_headers(body, secret="not-the-secret")
    elif problem == "stale timestamp":
        headers = slack_headers(body, timestamp=int(time.time()) - 301)
    else:
        body = body.replace(CLICKER, "U0ATTACKER")
    response = web.post("/slack/events", content=body, headers=headers)
    assert response.status_code == 401
    assert alerts(engine)[0].state == "open" and slack_api.calls_to("chat.postEphemeral") == []


def test_link_buttons_are_acknowledged(web, alert):
    assert click(web, alert, ActionId.OPEN_IN_STRIPE, value="").status_code == 200


def test_a_malformed_body_is_refused_before_anything_else(web, engine, slack_api, alert):
    body = "payload=%7B%27not-json"
    response = web.post(
        "/slack/events", content=body, headers=slack_headers(body, secret="whatever")
    )
    assert response.status_code == 400
    assert [c.method for c in slack_api.calls] == [
        "chat.postMessage"
    ]  # only the alert itself, from before

"""Task nudges (one DM per assignee per day) and the two job buttons, end to end: the job,
the outbox sender, the loopback Slack API, and signed clicks through the real Bolt app."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from slack_sdk import WebClient
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.sender import Sender, SenderConfig
from bot.slack_app import create_bolt_app, slack_route
from handlers.jobs.task_nudges import ALREADY_DONE, send_task_nudges
from handlers.jobs.trial_reminders import send_trial_reminders
from handlers.slack.ids import ActionId
from handlers.slack.job_blocks import NUDGE_DONE_BY
from handlers.slack.refs import TaskModalRef
from storage.models import Task, TaskStatus
from tests.jobs.conftest import NOW, add_task, add_trial, outbox, rows
from tests.slack.conftest import BOT_TOKEN, FakeClock, make_settings
from tests.slack.signing import block_actions, form_body, slack_headers
from tests.slack.test_interactivity import submit

TODAY = date(2026, 3, 27)


@pytest.fixture
def settings(slack_api):
    return make_settings(slack_api, billbot_timezone="Europe/Berlin", slack_channel_trial="#trials")


@pytest.fixture
def web(engine, settings, slack_api):
    client = WebClient(token=BOT_TOKEN, base_url=slack_api.base_url)
    bolt = create_bolt_app(
        settings, engine=engine, client=client, clock=FakeClock(NOW), process_before_response=True
    )
    with TestClient(Starlette(routes=[slack_route(bolt)])) as http:
        yield http


def deliver(engine, slack_api) -> None:
    sender = Sender(
        engine=engine,
        client=WebClient(token=BOT_TOKEN, base_url=slack_api.base_url, retry_handlers=[]),
        config=SenderConfig(channel_interval=0, poll=0.01),
        clock=FakeClock(NOW),
    )
    for _ in range(10):
        sender.step()


def click(http, *, action_id, value, user, posted) -> int:
    payload = block_actions(
        action_id=action_id,
        value=value,
        user=user,
        channel=posted.response["channel"],
        message_ts=posted.response["ts"],
    )
    payload["message"].update(blocks=posted.json_param("blocks"), text=posted.params["text"])
    body = form_body(payload)
    return http.post("/slack/events", content=body, headers=slack_headers(body)).status_code


def test_one_dm_per_assignee_with_tasks_due_today_or_overdue(engine, settings):
    overdue = add_task(engine, assignee="U0ANNA", due=TODAY - timedelta(days=3), title="Quote")
    today = add_task(engine, assignee="U0ANNA", due=TODAY, title="Call")
    add_task(engine, assignee="U0ANNA", due=TODAY + timedelta(days=1), title="Later")
    add_task(engine, assignee="U0ANNA", due=None, title="Someday")
    add_task(engine, assignee="U0BEN", due=TODAY, title="Check in")

    result = send_task_nudges(engine=engine, settings=settings, now=NOW)

    anna, ben = sorted(outbox(engine, "task-nudges"), key=lambda m: m.channel)
    assert (anna.channel, ben.channel) == ("U0ANNA", "U0BEN")
    task_blocks = [b for b in anna.payload["blocks"] if b.get("block_id", "").startswith("task:")]
    assert [b["block_id"] for b in task_blocks] == [f"task:{overdue}", f"task:{today}"]
    assert (
        "overdue" in task_blocks[0]["text"]["text"]
        and "due today" in task_blocks[1]["text"]["text"]
    )
    assert task_blocks[0]["accessory"]["action_id"] == ActionId.TASK_DONE
    assert result.posted == ["DM to U0ANNA with 2 tasks", "DM to U0BEN with 1 task"]

    again = send_task_nudges(engine=engine, settings=settings, now=NOW + timedelta(hours=2))
    assert len(outbox(engine)) == 2 and len(again.skipped) == 2
    tomorrow = send_task_nudges(engine=engine, settings=settings, now=NOW + timedelta(days=1))
    assert len(tomorrow.posted) == 2  # still open, so nudged again the next morning


def test_done_button_closes_the_task_and_marks_it_in_the_dm(engine, settings, slack_api, web):
    task_id = add_task(engine, assignee="U0ANNA", due=TODAY, title="Call Acme")
    send_task_nudges(engine=engine, settings=settings, now=NOW)
    deliver(engine, slack_api)
    [posted] = slack_api.calls_to("chat.postMessage", ok_only=True)
    assert posted.params["channel"] == "U0ANNA" and posted.response["channel"] == "D0ANNA"
    value = posted.json_param("blocks")[1]["accessory"]["value"]

    assert (
        click(web, action_id=ActionId.TASK_DONE, value=value, user="U0ANNA", posted=posted) == 200
    )
    [task] = rows(engine, Task)
    assert (task.status, task.closed_by) == (TaskStatus.DONE, "U0ANNA")
    [update] = slack_api.calls_to("chat.update")
    [marked] = [b for b in update.json_param("blocks") if b.get("block_id") == f"task:{task_id}"]
    assert "accessory" not in marked
    assert NUDGE_DONE_BY.format(user="U0ANNA") in marked["text"]["text"]

    click(web, action_id=ActionId.TASK_DONE, value=value, user="U0ANNA", posted=posted)
    [ephemeral] = slack_api.calls_to("chat.postEphemeral")
    assert ephemeral.params["text"] == ALREADY_DONE.format(user="U0ANNA")
    click(web, action_id=ActionId.TASK_DONE, value='{"task": "x"}', user="U0ANNA", posted=posted)
    assert len(slack_api.calls_to("chat.update")) == 1  # a forged value changes nothing


def test_trial_button_opens_the_task_modal_for_the_customer(engine, settings, slack_api, web):
    add_trial(engine, 1, ends=NOW + timedelta(days=1, hours=2))
    send_trial_reminders(engine=engine, settings=settings, now=NOW)
    deliver(engine, slack_api)
    [posted] = slack_api.calls_to("chat.postMessage", ok_only=True)
    [section] = [b for b in posted.json_param("blocks") if b.get("block_id") == "trial:sub_t1"]

    status = click(
        web,
        action_id=ActionId.TRIAL_CREATE_TASK,
        value=section["accessory"]["value"],
        user="U0CLICKER",
        posted=posted,
    )
    assert status == 200
    [opened] = slack_api.calls_to("views.open")
    view = opened.json_param("view")
    assert TaskModalRef.decode(view["private_metadata"]) == TaskModalRef(customer="cus_t1")
    assert "Trial Customer 1" in view["blocks"][0]["elements"][0]["text"]
    due = view["blocks"][3]["element"]["initial_date"]
    assert due == "2026-03-28"  # the trial's last day comes before two business days out

    assert submit(web, view, due="2026-03-28").status_code == 200
    [task] = rows(engine, Task)
    assert (task.customer_id, task.alert_id, task.status) == ("cus_t1", None, TaskStatus.OPEN)

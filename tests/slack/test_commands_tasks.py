"""/tasks and its Done / Reassign controls, end to end: signed requests through POST
/slack/events, the real Bolt app, the store on SQLite and PostgreSQL, and the loopback Slack
API (which also receives what is posted to response URLs)."""

from __future__ import annotations

from datetime import date

import pytest
from slack_sdk import WebClient
from sqlmodel import select

from bot.sender import Sender, SenderConfig
from handlers.slack import command_copy as words
from handlers.slack.command_ids import CommandAction, TaskRef, TaskScope
from handlers.slack.commands import Usage
from handlers.slack.commands_tasks import TaskList, parse_tasks_text
from storage.db import read_scope, session_scope
from storage.models import OutboxMessage, Task, TaskAudit
from storage.models.outbox import Operation
from storage.tasks import close_task, create_task
from tests.slack.command_requests import TEAM_DOMAIN, click, slash, start_web, texts
from tests.slack.conftest import BOT_TOKEN, make_settings
from tests.slack.factories import add_customer, alerts, failed_payment

ME, OTHER, THIRD = "U0ME", "U0OTHER", "U0THIRD"


@pytest.fixture
def web(engine, settings, slack_api, clock):
    with start_web(engine, settings, slack_api, clock) as http:
        yield http


def add_task(engine, clock, *, title, assignee=ME, due=None, customer="cus_acme", alert_id=None):
    with session_scope(engine) as session:
        task = create_task(
            session=session,
            customer_id=customer,
            alert_id=alert_id,
            title=title,
            note=None,
            assignee=assignee,
            creator=OTHER,
            due_date=due,
            now=clock(),
        )
        return task.id


@pytest.fixture
def acme(engine):
    with session_scope(engine) as session:
        add_customer(session)


@pytest.fixture
def posted_alert(engine, settings, slack_api, clock):
    failed_payment(engine, settings, 1)
    Sender(
        engine=engine,
        client=WebClient(token=BOT_TOKEN, base_url=slack_api.base_url, retry_handlers=[]),
        config=SenderConfig(channel_interval=0, poll=0.01),
        clock=clock,
    ).step()
    [alert] = alerts(engine)
    assert alert.message_ts is not None
    return alert


def task_row(engine, task_id) -> Task:
    with read_scope(engine) as session:
        task = session.get(Task, task_id)
        session.expunge_all()
        return task


def audit(engine, task_id) -> list[str]:
    with read_scope(engine) as session:
        rows = session.exec(select(TaskAudit).where(TaskAudit.task_id == task_id)).all()
        return [row.action for row in rows]


def alert_updates(engine, alert_id) -> list[OutboxMessage]:
    with read_scope(engine) as session:
        rows = session.exec(
            select(OutboxMessage).where(
                OutboxMessage.alert_id == alert_id, OutboxMessage.operation == Operation.UPDATE
            )
        ).all()
        session.expunge_all()
        return list(rows)


def test_parse_tasks_text():
    assert parse_tasks_text("", caller=ME) == TaskList(TaskScope.MINE, ME)
    assert parse_tasks_text("  ALL ", caller=ME) == TaskList(TaskScope.ALL, None)
    assert parse_tasks_text("<@U0OTHER|other>", caller=ME) == TaskList(TaskScope.USER, OTHER)
    assert parse_tasks_text("<@U0ME>", caller=ME) == TaskList(TaskScope.MINE, ME)
    for garbage in ("@other", "everyone", "<#C123|sales>", "<@U0OTHER> all", "'; drop table task"):
        with pytest.raises(Usage):
            parse_tasks_text(garbage, caller=ME)


def test_tasks_lists_the_callers_open_tasks_soonest_first(
    web, engine, slack_api, clock, acme, posted_alert
):
    later = add_task(engine, clock, title="Send the renewal quote", due=date(2026, 12, 10))
    from_alert = add_task(
        engine,
        clock,
        title="Call about the card",
        due=date(2026, 11, 30),
        customer="cus_1",
        alert_id=posted_alert.id,
    )
    late = add_task(engine, clock, title="Overdue chase", due=date(2026, 11, 20))
    add_task(engine, clock, title="Not mine", assignee=OTHER)
    done = add_task(engine, clock, title="Already done")
    with session_scope(engine) as session:
        close_task(session=session, task=session.get(Task, done), actor=ME, now=clock())

    response = slash(web, slack_api, "/tasks", "", user=ME)

    assert response.status_code == 200 and response.text == ""  # acknowledged at once, empty
    [answer] = slack_api.responses()
    assert answer["response_type"] == "ephemeral"
    shown = texts(answer)
    assert "Your open follow-ups* (3)" in shown
    assert (
        shown.index("Overdue chase")
        < shown.index("Call about the card")
        < shown.index("Send the renewal quote")
    )
    assert "Not mine" not in shown and "Already done" not in shown
    assert ":warning: was due <!date^" in shown  # a past due date is flagged
    assert "Acme Inc" in shown and "Customer 1" in shown
    permalink = f"https://{TEAM_DOMAIN}.slack.com/archives/{posted_alert.message_channel}/p{posted_alert.message_ts.replace('.', '')}"
    assert f"<{permalink}|{words.BTN_OPEN_ALERT}>" in shown
    controls = [b for b in answer["blocks"] if b["type"] == "actions"]
    assert [TaskRef.decode(b["block_id"]).task for b in controls] == [late, from_alert, later]
    assert {e["action_id"] for b in controls for e in b["elements"]} == {
        CommandAction.TASK_DONE,
        CommandAction.TASK_REASSIGN,
    }


def test_tasks_all_and_someone_elses(web, engine, slack_api, clock, acme):
    add_task(engine, clock, title="Mine", assignee=ME)
    add_task(engine, clock, title="Theirs", assignee=OTHER)

    slash(web, slack_api, "/tasks", "all", user=ME)
    slash(web, slack_api, "/tasks", "<@U0OTHER|other>", user=ME)
    slash(web, slack_api, "/tasks", "<@U0THIRD|third>", user=ME)

    every, theirs, nobody = (texts(r) for r in slack_api.responses())
    assert (
        "All open follow-ups* (2)" in every and "for <@U0ME>" in every and "for <@U0OTHER>" in every
    )
    assert "<@U0OTHER>'s open follow-ups* (1)" in theirs
    assert "Theirs" in theirs and "Mine" not in theirs
    assert words.TASKS_NONE_USER.format(user=THIRD) in nobody


def test_tasks_with_garbage_answers_with_usage(web, slack_api):
    slash(web, slack_api, "/tasks", "'; DROP TABLE task; --", user=ME)
    [answer] = slack_api.responses()
    assert answer["text"] == words.TASKS_USAGE


def test_done_closes_the_task_audits_it_updates_the_alert_and_refreshes_the_list(
    web, engine, slack_api, clock, posted_alert
):
    task_id = add_task(
        engine, clock, title="Call about the card", customer="cus_1", alert_id=posted_alert.id
    )
    other = add_task(engine, clock, title="Another one", customer="cus_1")
    updates_before = len(alert_updates(engine, posted_alert.id))

    ref = TaskRef(task=task_id, scope=TaskScope.MINE)
    response = click(web, slack_api, action_id=CommandAction.TASK_DONE, user=ME, value=ref.encode())

    assert response.status_code == 200
    task = task_row(engine, task_id)
    assert (task.status, task.closed_by) == ("done", ME)
    assert audit(engine, task_id) == ["created", "done"]
    [update] = alert_updates(engine, posted_alert.id)[updates_before:]
    assert "Follow-up task done" in texts(update.payload)
    [answer] = slack_api.responses()
    assert answer["replace_original"] is True and answer["response_type"] == "ephemeral"
    assert "Done: _Call about the card_" in texts(answer)
    assert [
        TaskRef.decode(b["block_id"]).task for b in answer["blocks"] if b["type"] == "actions"
    ] == [other]


def test_done_twice_or_forged_changes_nothing(web, engine, slack_api, clock, acme):
    task_id = add_task(engine, clock, title="Chase")
    value = TaskRef(task=task_id).encode()
    click(web, slack_api, action_id=CommandAction.TASK_DONE, user=ME, value=value)
    click(web, slack_api, action_id=CommandAction.TASK_DONE, user=OTHER, value=value)
    click(web, slack_api, action_id=CommandAction.TASK_DONE, user=ME, value='{"task": "1 OR 1=1"}')
    click(
        web, slack_api, action_id=CommandAction.TASK_DONE, user=ME, value=TaskRef(task=999).encode()
    )

    assert audit(engine, task_id) == ["created", "done"]
    assert task_row(engine, task_id).closed_by == ME
    answers = [r["text"] for r in slack_api.responses()[1:]]
    assert answers == [
        words.TASK_ALREADY_DONE.format(user=ME),
        words.STALE,
        words.TASK_GONE,
    ]
    assert all(r.get("replace_original") is False for r in slack_api.responses()[1:])


def test_reassign_moves_the_task_and_updates_the_alert(web, engine, slack_api, clock, posted_alert):
    task_id = add_task(engine, clock, title="Call", customer="cus_1", alert_id=posted_alert.id)
    ref = TaskRef(task=task_id, scope=TaskScope.ALL)
    before = len(alert_updates(engine, posted_alert.id))

    click(
        web,
        slack_api,
        action_id=CommandAction.TASK_REASSIGN,
        user=ME,
        block_id=ref.encode(),
        selected_user=THIRD,
    )
    click(
        web,
        slack_api,
        action_id=CommandAction.TASK_REASSIGN,
        user=ME,
        block_id=ref.encode(),
        selected_user=THIRD,
    )

    assert task_row(engine, task_id).assignee == THIRD
    assert audit(engine, task_id) == ["created", "reassigned"]
    [update] = alert_updates(engine, posted_alert.id)[before:]
    assert f"Follow-up task for <@{THIRD}>" in texts(update.payload)
    moved, again = slack_api.responses()
    assert "All open follow-ups* (1)" in texts(moved) and f"Reassigned to <@{THIRD}>" in texts(
        moved
    )
    assert again["text"] == words.TASK_SAME_ASSIGNEE.format(user=THIRD)


def test_done_on_the_app_home_republishes_the_home(web, engine, slack_api, clock, acme, caplog):
    task_id = add_task(engine, clock, title="Chase")
    value = TaskRef(task=task_id, scope=TaskScope.HOME).encode()

    click(web, slack_api, action_id=CommandAction.TASK_DONE, user=ME, value=value, on_home=True)
    click(web, slack_api, action_id=CommandAction.TASK_DONE, user=ME, value=value, on_home=True)

    assert task_row(engine, task_id).status == "done"
    first, second = slack_api.calls_to("views.publish")
    assert first.params["user_id"] == ME
    assert "Chase" not in texts(first.json_param("view"))
    assert words.HOME_NO_TASKS in texts(
        second.json_param("view")
    )  # a refused click shows the truth
    assert slack_api.responses() == []


def test_people_not_allowed_are_refused_and_change_nothing(engine, slack_api, clock, acme):
    settings = make_settings(slack_api, slack_allowed_users="U0ME")
    task_id = add_task(engine, clock, title="Secret follow-up")
    with start_web(engine, settings, slack_api, clock) as web:
        listing = slash(web, slack_api, "/tasks", "all", user=OTHER)
        click(
            web, slack_api, action_id=CommandAction.TASK_DONE, user=OTHER,
            value=TaskRef(task=task_id).encode(),
        )  # fmt: skip

    assert listing.status_code == 200 and listing.text == words.NOT_ALLOWED  # ephemeral
    [refusal] = slack_api.responses()
    assert refusal["text"] == words.NOT_ALLOWED and "Secret" not in str(refusal)
    assert task_row(engine, task_id).status == "open"
    assert audit(engine, task_id) == ["created"]

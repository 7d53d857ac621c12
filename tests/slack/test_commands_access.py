"""SLACK_ALLOWED_USERS / SLACK_ALLOWED_CHANNELS: the rule itself, and its enforcement on every
command, button (the alerts' too) and modal, through signed requests to the real Bolt app."""

from __future__ import annotations

import json

import pytest
from slack_sdk import WebClient
from sqlalchemy import func
from sqlmodel import select

from bot.sender import Sender, SenderConfig
from handlers.slack import command_copy as words
from handlers.slack.access import AccessPolicy, Requester, requester_of
from handlers.slack.command_ids import CommandAction, CustomerRef
from handlers.slack.ids import ActionId, CallbackId
from handlers.slack.refs import AlertRef, TaskModalRef
from storage.db import read_scope, session_scope
from storage.models import Task
from tests import store_rows
from tests.slack.command_requests import click, slash, start_web
from tests.slack.conftest import BOT_TOKEN, make_settings
from tests.slack.factories import alerts, failed_payment
from tests.slack.signing import form_body, slack_headers, view_submission

ME, STRANGER = "U0ME", "U0STRANGER"
FINANCE, GENERAL, DM = "C0FINANCE", "C0GENERAL", "D0ME"


@pytest.mark.parametrize(
    "users, channels, requester, allowed",
    [
        ((), (), Requester(STRANGER, GENERAL), True),  # no lists: everyone, everywhere
        ((), (), Requester(None, GENERAL), False),
        ((ME,), (), Requester(ME, GENERAL), True),
        ((ME,), (), Requester(STRANGER, DM), False),
        ((), (FINANCE,), Requester(STRANGER, FINANCE), True),  # the channel vets its members
        ((), (FINANCE,), Requester(STRANGER, GENERAL), False),
        ((), (FINANCE,), Requester(STRANGER, DM), False),  # a DM would skip that vetting
        ((), (FINANCE,), Requester(STRANGER, None), False),  # so would the App Home
        ((), (FINANCE,), Requester(STRANGER, None, is_view_submission=True), True),
        ((ME,), (FINANCE,), Requester(ME, DM), True),  # a listed person may ask privately
        ((ME,), (FINANCE,), Requester(ME, None), True),
        ((ME,), (FINANCE,), Requester(ME, GENERAL), False),
        ((ME,), (FINANCE,), Requester(STRANGER, FINANCE), False),
        ((ME,), (FINANCE,), Requester(STRANGER, None, is_view_submission=True), False),
    ],
)
def test_the_rule(users, channels, requester, allowed):
    assert AccessPolicy(frozenset(users), frozenset(channels)).allows(requester) is allowed


def test_posting_for_everyone_and_the_refusal_wording():
    open_policy, limited = AccessPolicy(), AccessPolicy(frozenset({ME}), frozenset({FINANCE}))
    assert open_policy.may_post_in(GENERAL) and open_policy.may_post_in(DM)
    assert limited.may_post_in(FINANCE) and not limited.may_post_in(DM)
    assert limited.refusal(Requester(STRANGER, FINANCE)) == words.NOT_ALLOWED
    assert limited.refusal(Requester(ME, GENERAL)) == words.NOT_HERE.format(
        channels=f"<#{FINANCE}>"
    )


def test_requester_of_every_kind_of_request():
    command = {"command": "/paid", "user_id": ME, "channel_id": FINANCE}
    action = {"type": "block_actions", "user": {"id": ME}, "container": {"channel_id": FINANCE}}
    home_action = {"type": "block_actions", "user": {"id": ME}, "container": {"type": "view"}}
    submission = {"type": "view_submission", "user": {"id": ME}, "view": {}}
    event = {"type": "event_callback", "event": {"user": ME, "channel": DM}}
    assert requester_of(command) == Requester(ME, FINANCE)
    assert requester_of(action) == Requester(ME, FINANCE)
    assert requester_of(home_action) == Requester(ME, None)
    assert requester_of(submission) == Requester(ME, None, is_view_submission=True)
    assert requester_of(event) == Requester(ME, DM)
    assert requester_of({}) == Requester(None, None)


@pytest.fixture
def guarded(engine, slack_api, clock):
    settings = make_settings(slack_api, slack_allowed_users=ME)
    with start_web(engine, settings, slack_api, clock) as http:
        yield http, settings


def test_every_command_is_refused_politely_and_reveals_nothing(guarded, engine, slack_api):
    web, _ = guarded
    with session_scope(engine) as session:
        store_rows.customer(session, id="cus_acme", email="billing@acme.test", name="Acme Inc")
    for command, text in (("/paid", "cus_acme"), ("/tasks", "all"), ("/revenue", "")):
        response = slash(web, slack_api, command, text, user=STRANGER)
        assert response.status_code == 200 and response.text == words.NOT_ALLOWED
    assert slack_api.responses() == [] and slack_api.calls_to("files.getUploadURLExternal") == []


def test_our_buttons_and_the_alerts_buttons_are_refused(guarded, engine, slack_api, clock):
    web, settings = guarded
    failed_payment(engine, settings, 1)
    Sender(
        engine=engine,
        client=WebClient(token=BOT_TOKEN, base_url=slack_api.base_url, retry_handlers=[]),
        config=SenderConfig(channel_interval=0, poll=0.01),
        clock=clock,
    ).step()
    [alert] = alerts(engine)
    alert_value = AlertRef(alert=alert.id).encode()
    for action_id in (ActionId.MARK_HANDLED, ActionId.ASSIGN_TO_ME, ActionId.CREATE_TASK):
        click(web, slack_api, action_id=action_id, user=STRANGER, value=alert_value,
              channel=alert.message_channel)  # fmt: skip
    click(web, slack_api, action_id=CommandAction.PAID_CREATE_TASK, user=STRANGER,
          value=CustomerRef(customer="cus_1").encode())  # fmt: skip

    [after] = alerts(engine)
    assert (after.state, after.handled_by, after.revision) == ("open", None, alert.revision)
    assert slack_api.calls_to("views.open") == []
    with read_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(Task)).one() == 0
    assert [r["text"] for r in slack_api.responses()] == [words.NOT_ALLOWED] * 4


def test_a_modal_submitted_by_someone_not_allowed_creates_nothing(guarded, engine):
    web, _ = guarded
    view = {
        "id": "V0MODAL",
        "type": "modal",
        "callback_id": CallbackId.TASK_MODAL.value,
        "private_metadata": TaskModalRef(customer="cus_acme").encode(),
        "blocks": [],
    }
    body = form_body(view_submission(view=view, user=STRANGER, values={}))
    response = web.post("/slack/events", content=body, headers=slack_headers(body))
    answer = json.loads(response.text)
    assert answer["response_action"] == "update"
    assert words.NOT_ALLOWED in json.dumps(answer["view"])
    with read_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(Task)).one() == 0


def test_a_home_button_of_someone_no_longer_allowed_shows_the_notice(guarded, slack_api):
    web, _ = guarded
    click(web, slack_api, action_id=CommandAction.TASK_DONE, user=STRANGER, value='{"task": 1}',
          on_home=True)  # fmt: skip
    [published] = slack_api.calls_to("views.publish")
    assert published.params["user_id"] == STRANGER
    assert (
        published.json_param("view")["blocks"][0]["text"]["text"] == ":lock: " + words.NOT_ALLOWED
    )


def test_channels_only_vets_by_channel(engine, slack_api, clock):
    settings = make_settings(slack_api, slack_allowed_channels=FINANCE)
    with start_web(engine, settings, slack_api, clock) as web:
        in_finance = slash(web, slack_api, "/tasks", "", user=STRANGER, channel=FINANCE)
        in_general = slash(web, slack_api, "/tasks", "", user=STRANGER, channel=GENERAL)
        in_a_dm = slash(web, slack_api, "/tasks", "", user=STRANGER, channel=DM)
    assert in_finance.text == ""
    assert in_general.text == in_a_dm.text == words.NOT_HERE.format(channels=f"<#{FINANCE}>")
    assert [r["text"] for r in slack_api.responses()] == [words.TASKS_NONE_MINE]


def test_no_two_buttons_share_an_action_id():
    """Bolt runs the first listener whose action id matches: a shared id would send one
    module's clicks to another's listener."""
    ids = [action.value for action in ActionId] + [action.value for action in CommandAction]
    assert len(ids) == len(set(ids))

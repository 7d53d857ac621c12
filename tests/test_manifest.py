"""app_manifest.yml against Slack's manifest schema and against what the code registers:
every command the manifest declares is answered by the real Bolt app (and only those),
and the events and scopes the listeners rely on are declared."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.slack_app import SLACK_EVENTS_PATH, create_bolt_app, slack_route
from handlers.slack.command_ids import Command
from tests.fakes.slack_api import FakeSlackApi
from tests.slack.conftest import BOT_TOKEN, make_settings
from tests.slack.signing import slack_headers
from tests.slack.test_manifest import manifest, validator  # noqa: F401 (Slack's schema, shared)

# What the listeners call, and the scope each call needs.
SCOPES_USED = {
    "commands": "slash commands",
    "chat:write": "chat.postEphemeral, chat.postMessage, chat.update",
    "files:write": "the /revenue chart upload",
    "chat:write.public": "alerts in public channels billbot was not invited to",
    "im:write": "task nudges in each assignee's direct messages with billbot",
}
# A text each command answers at once without touching Slack's file API.
QUICK_TEXT = {Command.PAID: "", Command.TASKS: "help", Command.REVENUE: "not a month"}


def test_manifest_is_valid_for_slack(validator, manifest):  # noqa: F811
    assert [e.message for e in validator.iter_errors(manifest)] == []


def test_the_manifest_declares_exactly_the_commands_the_code_registers(manifest):  # noqa: F811
    declared = {entry["command"] for entry in manifest["features"]["slash_commands"]}
    assert declared == {command.value for command in Command}


def test_every_command_has_a_usage_hint_and_the_events_route(manifest):  # noqa: F811
    for entry in manifest["features"]["slash_commands"]:
        assert entry["url"].endswith(SLACK_EVENTS_PATH)
        assert entry["usage_hint"].strip() and entry["description"].strip()
    settings = manifest["settings"]
    assert settings["interactivity"]["is_enabled"] is True
    assert settings["interactivity"]["request_url"].endswith(SLACK_EVENTS_PATH)
    assert settings["event_subscriptions"]["request_url"].endswith(SLACK_EVENTS_PATH)
    assert "app_home_opened" in settings["event_subscriptions"]["bot_events"]
    assert manifest["features"]["app_home"]["home_tab_enabled"] is True
    # Payment data is sensitive: ask for exactly the scopes the code uses, no more.
    assert set(SCOPES_USED) == set(manifest["oauth_config"]["scopes"]["bot"])
    # Task nudges arrive as direct messages: the Messages tab must be on (read-only).
    assert manifest["features"]["app_home"]["messages_tab_enabled"] is True


@pytest.fixture
def web(sqlite_engine):
    with FakeSlackApi(token=BOT_TOKEN) as api:
        settings = make_settings(api)
        client = WebClient(token=BOT_TOKEN, base_url=api.base_url)
        bolt = create_bolt_app(
            settings, engine=sqlite_engine, client=client, process_before_response=True
        )
        with TestClient(Starlette(routes=[slack_route(bolt)])) as http:
            yield http, api


def send(http: TestClient, command: str, text: str, response_url: str):
    body = urlencode(
        {
            "team_id": "T0BILLBOT",
            "team_domain": "billbot-test",
            "channel_id": "C0SALES",
            "user_id": "U0ME",
            "command": command,
            "text": text,
            "response_url": response_url,
            "trigger_id": "1.2.3",
        }
    )
    return http.post(SLACK_EVENTS_PATH, content=body, headers=slack_headers(body))


def test_the_bolt_app_answers_every_declared_command_and_no_other(web, manifest):  # noqa: F811
    http, api = web
    for entry in manifest["features"]["slash_commands"]:
        command = Command(entry["command"])
        response = send(http, command.value, QUICK_TEXT[command], api.response_url())
        assert response.status_code == 200, command
    assert send(http, "/undeclared", "", api.response_url()).status_code == 404

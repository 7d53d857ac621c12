"""Signed slash commands, clicks on ephemeral and App Home messages, and App Home events,
shaped like Slack's (shared/reference/slack/payloads), sent through POST /slack/events."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import pytest
from slack_sdk import WebClient
from starlette.applications import Starlette
from starlette.testclient import TestClient

from bot.slack_app import create_bolt_app, slack_route
from tests.fakes.slack_api import TEAM_ID, FakeSlackApi
from tests.slack.conftest import BOT_TOKEN
from tests.slack.signing import block_actions, form_body, slack_headers

CHANNEL = "C0SALES"
TEAM_DOMAIN = "billbot-test"


def start_web(engine, settings, api: FakeSlackApi, clock) -> TestClient:
    """The real Bolt app (listeners finish before the answer, so tests see their effects)."""
    client = WebClient(token=BOT_TOKEN, base_url=api.base_url)
    bolt = create_bolt_app(
        settings, engine=engine, client=client, clock=clock, process_before_response=True
    )
    return TestClient(Starlette(routes=[slack_route(bolt)]))


def slash(
    http: TestClient,
    api: FakeSlackApi,
    command: str,
    text: str,
    *,
    user: str,
    channel: str = CHANNEL,
):
    body = urlencode(
        {
            "token": "verification_token",
            "team_id": TEAM_ID,
            "team_domain": TEAM_DOMAIN,
            "channel_id": channel,
            "channel_name": "sales",
            "user_id": user,
            "user_name": user.lower(),
            "command": command,
            "text": text,
            "api_app_id": "A0BILLBOT",
            "is_enterprise_install": "false",
            "response_url": api.response_url(),
            "trigger_id": "13345224609.738474920.8088930838d88f008e0",
        }
    )
    return http.post("/slack/events", content=body, headers=slack_headers(body))


def click(
    http: TestClient,
    api: FakeSlackApi,
    *,
    action_id: str,
    user: str,
    value: str | None = None,
    block_id: str = "b",
    channel: str = CHANNEL,
    selected_user: str | None = None,
    ephemeral: bool = True,
    on_home: bool = False,
):
    """A click on an ephemeral answer (with a response_url), or on the App Home (without)."""
    payload = block_actions(
        action_id=action_id, value=value, user=user, channel=channel, message_ts="1700000000.000001"
    )
    action = payload["actions"][0]
    action["block_id"] = block_id
    if selected_user is not None:
        action.update(type="users_select", selected_user=selected_user)
    if on_home:
        for key in ("container", "channel", "message", "response_url"):
            payload.pop(key)
        payload["container"] = {"type": "view", "view_id": "V0HOME"}
        payload["view"] = {"id": "V0HOME", "type": "home", "blocks": []}
    else:
        payload["container"]["is_ephemeral"] = ephemeral
        payload["response_url"] = api.response_url("actions")
    body = form_body(payload)
    return http.post("/slack/events", content=body, headers=slack_headers(body))


def home_opened(http: TestClient, *, user: str, tab: str = "home"):
    body = json.dumps(
        {
            "token": "verification_token",
            "team_id": TEAM_ID,
            "api_app_id": "A0BILLBOT",
            "type": "event_callback",
            "event_id": f"Ev{int(time.time() * 1000)}",
            "event_time": int(time.time()),
            "event": {
                "type": "app_home_opened",
                "user": user,
                "channel": "D0BILLBOT",
                "tab": tab,
                "event_ts": f"{time.time():.6f}",
            },
        }
    )
    return http.post(
        "/slack/events",
        content=body,
        headers=slack_headers(body, content_type="application/json"),
    )


def wait_for(condition: Callable[[], Any], *, timeout: float = 10.0) -> Any:
    """For work Bolt runs in a thread after the answer (lazy listeners): poll, don't sleep."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(0.01)
    pytest.fail("the expected Slack call never came")


def texts(message: dict[str, Any]) -> str:
    """Every piece of text in a message or view, joined: what a reader would see."""
    found: list[str] = [message.get("text", "")] if isinstance(message.get("text"), str) else []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                found.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(message.get("blocks", []))
    return "\n".join(found)

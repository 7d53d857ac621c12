"""Requests signed exactly as Slack signs them, and payloads shaped like Slack's
(shared/reference/slack/payloads): form-encoded `payload=<JSON>` for interactivity."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any
from urllib.parse import quote

from tests.fakes.slack_api import TEAM_ID
from tests.slack.conftest import SIGNING_SECRET


def slack_headers(
    body: str,
    *,
    secret: str = SIGNING_SECRET,
    timestamp: int | None = None,
    content_type: str = "application/x-www-form-urlencoded",
) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": f"v0={digest}",
        "Content-Type": content_type,
    }


def form_body(payload: dict[str, Any]) -> str:
    return "payload=" + quote(json.dumps(payload), safe="")


def _user(user_id: str) -> dict[str, str]:
    return {"id": user_id, "username": user_id.lower(), "name": user_id.lower(), "team_id": TEAM_ID}


def block_actions(
    *,
    action_id: str,
    value: str | None,
    user: str,
    channel: str,
    message_ts: str,
    trigger_id: str = "13345224609.738474920.8088930838d88f008e0",
) -> dict[str, Any]:
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": "alert",
        "type": "button",
        "text": {"type": "plain_text", "text": "Button", "emoji": True},
        "action_ts": f"{int(time.time())}.000100",
    }
    if value is not None:
        action["value"] = value
    return {
        "type": "block_actions",
        "user": _user(user),
        "api_app_id": "A0BILLBOT",
        "token": "verification_token",
        "container": {
            "type": "message",
            "message_ts": message_ts,
            "channel_id": channel,
            "is_ephemeral": False,
        },
        "trigger_id": trigger_id,
        "team": {"id": TEAM_ID, "domain": "billbot-test"},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": "billing-alerts"},
        "message": {
            "type": "message",
            "ts": message_ts,
            "bot_id": "B0BILLBOT",
            "text": "alert",
            "blocks": [],
        },
        "state": {"values": {}},
        "response_url": "https://hooks.slack.com/actions/T0BILLBOT/1/abc",
        "actions": [action],
    }


def view_submission(
    *, view: dict[str, Any], user: str, values: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    submitted = {**view, "state": {"values": values}}
    return {
        "type": "view_submission",
        "team": {"id": TEAM_ID, "domain": "billbot-test"},
        "user": _user(user),
        "api_app_id": "A0BILLBOT",
        "token": "verification_token",
        "trigger_id": "111.222.valid",
        "view": submitted,
        "response_urls": [],
    }

"""The loopback Slack API answers the methods billbot uses the way Slack does (through the real
WebClient), so later tests (App Home, DMs, chart uploads) can rely on it."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from tests.slack.conftest import BOT_TOKEN


@pytest.fixture
def client(slack_api):
    return WebClient(token=BOT_TOKEN, base_url=slack_api.base_url, retry_handlers=[])


def test_messages_updates_and_threads(client, slack_api):
    posted = client.chat_postMessage(channel="#general", text="hello")
    assert posted["channel"].startswith("C") and posted["message"]["text"] == "hello"
    reply = client.chat_postMessage(
        channel=posted["channel"], thread_ts=posted["ts"], text="in thread"
    )
    assert reply["message"]["thread_ts"] == posted["ts"]
    assert (
        client.chat_update(channel=posted["channel"], ts=posted["ts"], text="edited")["text"]
        == "edited"
    )
    with pytest.raises(SlackApiError, match="message_not_found"):
        client.chat_update(channel=posted["channel"], ts="1.0", text="x")
    assert client.chat_postEphemeral(channel=posted["channel"], user="U1", text="psst")[
        "message_ts"
    ]
    assert [c.method for c in slack_api.calls] == ["chat.postMessage"] * 2 + ["chat.update"] * 2 + [
        "chat.postEphemeral"
    ]


def test_views_users_and_dms(client):
    view = {"type": "home", "blocks": []}
    assert client.views_publish(user_id="U1", view=view)["view"]["type"] == "home"
    opened = client.views_open(trigger_id="1.2.abc", view={**view, "type": "modal"})["view"]
    assert client.views_update(view_id=opened["id"], view=view)["view"]["id"] == opened["id"]
    assert client.users_info(user="U1")["user"]["tz"] == "Europe/Berlin"
    dm = client.conversations_open(users="U1")["channel"]["id"]
    assert dm.startswith("D") and client.chat_postMessage(channel=dm, text="hi")["channel"] == dm


def test_file_upload_flow(client, slack_api):
    result = client.files_upload_v2(
        content=b"\x89PNG fake", filename="mrr.png", title="MRR", channel="C0DIGEST"
    )
    assert result["file"]["id"].startswith("F")
    methods = [c.method for c in slack_api.calls]
    assert methods == ["files.getUploadURLExternal", "upload", "files.completeUploadExternal"]
    assert slack_api.calls_to("upload")[0].params["bytes"] == len(b"\x89PNG fake")


def test_programmed_failures_and_bad_tokens(client, slack_api):
    slack_api.fail("chat.postMessage", status=429, error="ratelimited", retry_after=3)
    with pytest.raises(SlackApiError) as raised:
        client.chat_postMessage(channel="C1", text="x")
    assert (
        raised.value.response.status_code == 429
        and raised.value.response.headers["Retry-After"] == "3"
    )
    slack_api.missing_channels.add("C404")
    with pytest.raises(SlackApiError, match="channel_not_found"):
        client.chat_postMessage(channel="C404", text="x")
    with pytest.raises(SlackApiError, match="invalid_auth"):
        WebClient(token="xoxb-wrong", base_url=slack_api.base_url).auth_test()

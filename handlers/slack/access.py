"""Who may use billbot, and where: SLACK_ALLOWED_USERS and SLACK_ALLOWED_CHANNELS.

The rule (docs/commands.md), with either list empty meaning "no limit":

- the user must be in SLACK_ALLOWED_USERS;
- the request must come from a channel in SLACK_ALLOWED_CHANNELS, or from a private place
  (a DM, the App Home) when the user is listed by name in SLACK_ALLOWED_USERS: without a
  user list, membership of an allowed channel is the only vetting, and a DM would skip it;
- a modal submission is checked for the user only: Slack sends one only for a modal billbot
  opened, and billbot opens one only after a click that passed this check;
- anything posted for everyone (`/paid … public`, `/revenue`) needs an allowed channel.

Enforcement is a listener registered before every other one (this module is first in
`LISTENER_MODULES`): Bolt runs only the first listener whose matchers pass, and this
listener matches exactly the refused requests. So every command, button and modal of
billbot, the alerts' included, is covered, and nothing here touches the database. The
refusal is acknowledged at once and says nothing about the data.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient

from bot.settings import Settings
from handlers.slack import command_copy as words
from handlers.slack.deps import SlackDeps

logger = logging.getLogger(__name__)
ANYTHING = re.compile(r".*", re.DOTALL)


@dataclass(frozen=True, slots=True)
class Requester:
    """Who asks, and from where: `channel_id` is None for the App Home and modals."""

    user_id: str | None
    channel_id: str | None
    is_view_submission: bool = False


@dataclass(frozen=True, slots=True)
class AccessPolicy:
    users: frozenset[str] = frozenset()
    channels: frozenset[str] = frozenset()

    @classmethod
    def from_settings(cls, settings: Settings) -> AccessPolicy:
        return cls(
            frozenset(settings.slack_allowed_users), frozenset(settings.slack_allowed_channels)
        )

    def user_allowed(self, user_id: str | None) -> bool:
        return bool(user_id) and (not self.users or user_id in self.users)

    def allows(self, requester: Requester) -> bool:
        if not self.user_allowed(requester.user_id):
            return False
        if not self.channels or requester.is_view_submission:
            return True
        if requester.channel_id in self.channels:
            return True
        return is_private(requester.channel_id) and requester.user_id in self.users

    def may_post_in(self, channel_id: str | None) -> bool:
        """Posting for everyone: any channel when unrestricted, else a listed one."""
        return not self.channels or channel_id in self.channels

    def refusal(self, requester: Requester) -> str:
        """The polite sentence: where billbot works, but only to someone who may use it."""
        if not self.user_allowed(requester.user_id) or not self.channels:
            return words.NOT_ALLOWED
        return words.NOT_HERE.format(channels=self.channel_list())

    def channel_list(self) -> str:
        return ", ".join(f"<#{channel}>" for channel in sorted(self.channels))


def is_private(channel_id: str | None) -> bool:
    """The App Home and modals have no channel; DM ids start with D."""
    return channel_id is None or channel_id.startswith("D")


def requester_of(body: dict[str, Any]) -> Requester:
    """The user and channel of a slash command, a block action, a modal submission or an event."""
    if "command" in body:
        return Requester(body.get("user_id"), body.get("channel_id"))
    if body.get("type") == "view_submission":
        return Requester(_user_id(body), None, is_view_submission=True)
    if body.get("type") == "event_callback":
        event = body.get("event") or {}
        return Requester(event.get("user"), event.get("channel"))
    container = body.get("container") or {}
    channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
    return Requester(_user_id(body), channel)


def _user_id(body: dict[str, Any]) -> str | None:
    user = body.get("user")
    return user.get("id") if isinstance(user, dict) else None


def register(app: App, deps: SlackDeps) -> None:
    policy = AccessPolicy.from_settings(deps.settings)

    def refused(body: dict[str, Any]) -> bool:
        return not policy.allows(requester_of(body))

    @app.command(ANYTHING, matchers=[refused])
    def refuse_command(ack: Ack, body: dict[str, Any]) -> None:
        requester = requester_of(body)
        _log_refusal(requester, "command")
        ack(text=policy.refusal(requester))

    @app.action(ANYTHING, matchers=[refused])
    def refuse_click(
        ack: Ack, body: dict[str, Any], respond: Respond | None, client: WebClient
    ) -> None:
        ack()
        requester = requester_of(body)
        _log_refusal(requester, "action")
        tell_refusal(client, respond, requester, policy.refusal(requester))

    @app.view(ANYTHING, matchers=[refused])
    def refuse_submission(ack: Ack, body: dict[str, Any]) -> None:
        requester = requester_of(body)
        _log_refusal(requester, "view")
        ack(response_action="update", view=refusal_modal(policy.refusal(requester)))


def tell_refusal(
    client: WebClient, respond: Respond | None, requester: Requester, text: str
) -> None:
    """Ephemeral where Slack allows one; on the App Home, the notice replaces the tab."""
    if respond is not None and respond.response_url:
        respond(text=text, response_type="ephemeral", replace_original=False)
    elif requester.channel_id is not None and requester.user_id:
        client.chat_postEphemeral(channel=requester.channel_id, user=requester.user_id, text=text)
    elif requester.user_id:
        client.views_publish(user_id=requester.user_id, view=notice_home(":lock: " + text))


def notice_home(text: str) -> dict[str, Any]:
    return {
        "type": "home",
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


def refusal_modal(text: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": "billbot"},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}],
    }


def _log_refusal(requester: Requester, kind: str) -> None:
    logger.info(
        "slack.access.refused",
        extra={"user_id": requester.user_id, "channel_id": requester.channel_id, "kind": kind},
    )

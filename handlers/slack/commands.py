"""The slash commands' shared parts: the one error path, where answers go, and text parsing.

Listeners acknowledge first and then answer through a `Reply` (the request's
`response_url` when Slack gave one, an ephemeral message otherwise). Expected problems are
`UserFacingError`s whose text is the answer; anything else is logged once with a short
reference, and the user sees only the reference. Lazy functions and code after `ack()` run
outside Bolt's `@app.error`, which is why every listener body runs inside `answering`.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from slack_bolt import App
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient

from handlers.slack import command_copy as words
from handlers.slack.command_ids import MENTION, Command
from handlers.slack.deps import SlackDeps

logger = logging.getLogger(__name__)

COMMAND_MODULES = (
    "handlers.slack.commands_paid",
    "handlers.slack.commands_tasks",
    "handlers.slack.commands_revenue",
)
__all__ = ["Command", "Reply", "UserFacingError", "answering", "register"]


class UserFacingError(Exception):
    """An expected problem; `str(error)` is the whole answer the user sees (ephemerally)."""


class Usage(UserFacingError):
    """Empty, garbled or unknown input: the answer is a short usage message."""


class NotAllowed(UserFacingError):
    """The user may not do this here (for instance `public` in a channel not allowed)."""


class Gone(UserFacingError):
    """A button about something that no longer exists or already changed."""


@dataclass(frozen=True, slots=True)
class Reply:
    """Where the answers to one request go."""

    client: WebClient
    respond: Respond | None
    user_id: str
    channel_id: str | None

    @classmethod
    def to(cls, body: dict[str, Any], client: WebClient, respond: Respond | None) -> Reply:
        if respond is not None and not respond.response_url:
            respond = None  # the App Home: Bolt passes a `respond` that cannot be used
        if "command" in body:
            return cls(client, respond, body["user_id"], body.get("channel_id"))
        channel = (body.get("container") or {}).get("channel_id") or (
            body.get("channel") or {}
        ).get("id")
        return cls(client, respond, body["user"]["id"], channel)

    def private(
        self, text: str, blocks: Sequence[dict[str, Any]] | None = None, *, replace: bool = False
    ) -> None:
        """Only the asker sees it; `replace` swaps the ephemeral message the click came from."""
        if self.respond is not None:
            self._check(
                self.respond(
                    text=text,
                    blocks=blocks,
                    response_type="ephemeral",
                    replace_original=replace,
                )
            )
        elif self.channel_id is not None:
            self.client.chat_postEphemeral(
                channel=self.channel_id, user=self.user_id, text=text, blocks=blocks
            )

    def public(self, text: str, blocks: Sequence[dict[str, Any]] | None = None) -> None:
        """Everyone in the channel sees it (only ever reached after `may_post_in`)."""
        if self.respond is None:
            raise UserFacingError(words.NOT_HERE_NO_CHANNELS)
        self._check(self.respond(text=text, blocks=blocks, response_type="in_channel"))

    @staticmethod
    def _check(response: Any) -> None:
        status = getattr(response, "status_code", 200)
        if status != 200:
            logger.warning("slack.respond.failed", extra={"status": status})


def new_reference() -> str:
    return uuid.uuid4().hex[:8]


@contextmanager
def answering(reply: Reply, *, what: str) -> Iterator[None]:
    """Run a listener's work: expected errors become the answer, others a reference."""
    try:
        yield
    except UserFacingError as error:
        reply.private(str(error))
    except Exception:
        reference = new_reference()
        logger.exception("slack.listener.failed", extra={"reference": reference, "what": what})
        try:
            reply.private(words.SOMETHING_WENT_WRONG.format(ref=reference))
        except Exception:  # the apology is best effort; the error is already logged
            logger.warning("slack.listener.apology_failed", extra={"reference": reference})


def split_public(text: str) -> tuple[str, bool]:
    """`acme public` -> ("acme", True). A lone `public` is a query for a customer named so."""
    words_ = text.split()
    if len(words_) > 1 and words_[-1].lower() == words.PAID_PUBLIC_WORD:
        return text[: text.lower().rstrip().rfind(words.PAID_PUBLIC_WORD)].strip(), True
    return text, False


def mentioned_user(text: str) -> str | None:
    """The user id of Slack's escaped mention `<@U123|name>` (or `<@U123>`), else None."""
    match = MENTION.match(text.strip())
    return match.group(1) if match else None


def register(app: App, deps: SlackDeps) -> None:
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(app, deps)

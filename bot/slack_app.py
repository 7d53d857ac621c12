"""The Bolt app: built by a factory, mounted on the web server at `POST /slack/events`.

- `create_bolt_app(settings, engine=..., client=...)` builds a `slack_bolt.App` with Slack's
  request verification on (`SLACK_SIGNING_SECRET`) and calls `register(app, deps)` of each
  listener module in `LISTENER_MODULES`. Nothing is created at import time.
- `slack_route(bolt_app)` (or `slack_routes(settings, engine=...)`, empty in console mode) is the Starlette route for the web app's route list. Bolt's own
  Starlette adapter calls the (blocking) `dispatch` on the event loop; this one runs it in
  the thread pool, so a slow listener never stalls the Stripe webhook.
- `start_socket_mode(bolt_app, settings)` connects over Socket Mode when `SLACK_APP_TOKEN`
  is set (for development behind a firewall); the HTTP route still works.
- `make_web_client(settings)` honours `SLACK_API_URL`.
"""

from __future__ import annotations

import importlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.starlette.handler import to_bolt_request, to_starlette_response
from slack_sdk import WebClient
from slack_sdk.http_retry import RetryHandler
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler
from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.settings import Settings
from handlers.slack import copy
from handlers.slack.deps import SlackDeps
from storage.types import utcnow

SLACK_EVENTS_PATH = "/slack/events"
LISTENER_MODULES = (
    # Each module defines `register(app: App, deps: SlackDeps)`.
    "handlers.slack.access",  # first: its listeners take every request that is refused
    "handlers.slack.actions",
    "handlers.slack.views",
    "handlers.slack.commands",
    "handlers.slack.home",
)
logger = logging.getLogger(__name__)


class SlackNotConfigured(RuntimeError):
    """Slack credentials are missing; billbot runs in console mode instead."""


def make_web_client(settings: Settings, *, retries: bool = True) -> WebClient:
    """A WebClient for `SLACK_API_URL`. The outbox sender passes `retries=False`: it does its
    own retrying, and must be the only one deciding whether a message is sent again."""
    token = settings.slack_bot_token.get_secret_value() if settings.slack_bot_token else None
    base_url = (
        settings.slack_api_url
        if settings.slack_api_url.endswith("/")
        else settings.slack_api_url + "/"
    )
    handlers: list[RetryHandler] = [ConnectionErrorRetryHandler()] if retries else []
    return WebClient(token=token, base_url=base_url, timeout=10, retry_handlers=handlers)


def create_bolt_app(
    settings: Settings,
    *,
    engine: Engine,
    client: WebClient | None = None,
    clock: Callable[[], datetime] = utcnow,
    process_before_response: bool = False,
) -> App:
    """`process_before_response=True` finishes each listener before answering Slack (tests, FaaS);
    the listeners acknowledge first either way and stay well inside Slack's 3 seconds."""
    if not settings.slack_enabled:
        raise SlackNotConfigured(
            "SLACK_BOT_TOKEN is not set: Slack is off, alerts are printed to the log"
        )
    if (
        settings.slack_signing_secret is None
        or not settings.slack_signing_secret.get_secret_value()
    ):
        raise SlackNotConfigured(
            "SLACK_SIGNING_SECRET is not set: billbot cannot verify requests from Slack"
        )
    app = App(
        name="billbot",
        client=client or make_web_client(settings),
        signing_secret=settings.slack_signing_secret.get_secret_value(),
        request_verification_enabled=True,
        token_verification_enabled=False,  # auth.test runs on the first request, not at start-up
        process_before_response=process_before_response,
        logger=logging.getLogger("billbot.slack"),
    )
    deps = SlackDeps(settings=settings, engine=engine, clock=clock)
    for name in LISTENER_MODULES:
        importlib.import_module(name).register(app, deps)
    app.error(_unexpected_error)
    return app


def _unexpected_error(error: Exception, body: dict[str, Any], client: WebClient) -> BoltResponse:
    """Logged once with a short reference; the user sees the reference, never the error."""
    reference = uuid.uuid4().hex[:8]
    logger.exception(
        "slack.listener.failed",
        extra={"reference": reference, "type": body.get("type")},
        exc_info=error,
    )
    channel = (body.get("container") or {}).get("channel_id") or (body.get("channel") or {}).get(
        "id"
    )
    user = (body.get("user") or {}).get("id")
    if channel and user:
        try:
            client.chat_postEphemeral(
                channel=channel, user=user, text=copy.SOMETHING_WENT_WRONG.format(ref=reference)
            )
        except Exception:  # the apology is best effort; the error is already logged
            logger.warning("slack.listener.apology_failed", extra={"reference": reference})
    return BoltResponse(status=500, body="")


def slack_route(bolt_app: App, path: str = SLACK_EVENTS_PATH) -> Route:
    """`POST /slack/events` for commands, interactivity and events, verified by Bolt."""

    async def slack_events(request: Request) -> Response:
        body = await request.body()
        try:
            bolt_request = to_bolt_request(request, body)
        except (
            ValueError
        ):  # Bolt parses the body before it verifies; a malformed body is never Slack's
            return JSONResponse({"error": "invalid request"}, status_code=400)
        bolt_response = await run_in_threadpool(bolt_app.dispatch, bolt_request)
        return to_starlette_response(bolt_response)

    return Route(path, slack_events, methods=["POST"], name="slack_events")


def slack_routes(
    settings: Settings, *, engine: Engine, client: WebClient | None = None
) -> list[Route]:
    """For `create_app`'s route list: `[POST /slack/events]`, or `[]` in console mode."""
    if not settings.slack_enabled:
        logger.info("slack.console_mode")
        return []
    return [slack_route(create_bolt_app(settings, engine=engine, client=client))]


def start_socket_mode(bolt_app: App, settings: Settings) -> SocketModeHandler | None:
    """Connect over Socket Mode when SLACK_APP_TOKEN is set; `handler.close()` on shutdown."""
    if settings.slack_app_token is None or not settings.slack_app_token.get_secret_value():
        return None
    handler = SocketModeHandler(bolt_app, app_token=settings.slack_app_token.get_secret_value())
    handler.connect()
    logger.info("slack.socket_mode.connected")
    return handler

"""The app factory: one Starlette app, an explicit route list, and the background services
that live as long as the web server does.

Nothing is created at import time. `create_app(settings)` builds every part from the
settings it is given (tests pass their own engine), binds dependencies to the endpoints
when it registers them, and returns the app; uvicorn (or a test client) runs its lifespan,
which starts the services in order and stops them in reverse.

How the parts join (keep this the one place that wires them):
- routes: `/healthz`, `/stripe/webhook`, and Slack's `POST /slack/events` when Slack is
  configured (commands, buttons, modals, App Home; verified by Bolt);
- services: the inbox writer, the bad-signature counter, the worker, the Slack sender
  (console mode without a token),
  Socket Mode when SLACK_APP_TOKEN is set;
- reactions: the MRR ledger and alerts (`bot.services.standard_reactions`) run in the
  worker's transaction unless a caller passes its own.
`extra_routes` / `extra_services` let a caller (a test, a deployment) add its own; `clock` is
the one "now" the worker, the sender and the Slack listeners use (tests pass a controllable
one to see retries and Retry-After waits without sleeping).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from slack_bolt import App
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from bot.health import Health
from bot.inbox_writer import InboxWriter
from bot.sender import run_sender
from bot.services import ThreadService, standard_reactions
from bot.settings import Settings
from bot.slack_app import create_bolt_app, slack_route, start_socket_mode
from bot.webhook import StripeWebhook
from bot.webhook_rejections import RejectionCounter
from bot.worker import Worker
from handlers.stripe.registry import Reaction
from storage.db import make_engine
from storage.types import utcnow

logger = logging.getLogger(__name__)

WEBHOOK_PATH = "/stripe/webhook"


class Service(Protocol):
    """Something that runs beside the web server: started at start-up, stopped at shutdown."""

    name: str

    def start(self) -> None: ...

    def stop(self) -> None: ...


@dataclass
class AppParts:
    """What `create_app` built, kept on `app.state.parts` for tests and later wiring."""

    settings: Settings
    engine: Engine
    writer: InboxWriter
    worker: Worker | None
    services: list[Service] = field(default_factory=list)
    bolt_app: App | None = None
    rejections: RejectionCounter | None = None  # bad webhook signatures, for the health check
    clock: Callable[[], datetime] = utcnow


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    reactions: Sequence[Reaction] | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    extra_services: Sequence[Service] = (),
    clock: Callable[[], datetime] = utcnow,
) -> Starlette:
    owns_engine = engine is None
    engine = engine if engine is not None else make_engine(settings.database_url)
    if reactions is None:
        reactions = standard_reactions(settings)
    worker = (
        Worker.from_settings(settings, engine=engine, reactions=reactions, clock=clock)
        if settings.worker_embedded
        else None
    )
    writer = InboxWriter(engine, on_commit=worker.wake if worker else None)
    parts = AppParts(settings=settings, engine=engine, writer=writer, worker=worker, clock=clock)
    parts.rejections = RejectionCounter(engine)
    if settings.slack_enabled and settings.slack_signing_secret is not None:
        parts.bolt_app = create_bolt_app(settings, engine=engine, clock=clock)
    parts.services = [*_services(parts), *extra_services]
    webhook = StripeWebhook(
        settings=parts.settings, writer=parts.writer, rejections=parts.rejections
    )
    app = _App(
        webhook=webhook,
        routes=[*_routes(parts, webhook), *extra_routes],
        lifespan=_lifespan(parts, dispose_engine=owns_engine),
    )
    app.state.parts = parts
    return app


class _App(Starlette):
    """Starlette, but `POST /stripe/webhook` goes straight to its endpoint: it is the hot
    path (thousands of requests a second in a burst), and the endpoint is a plain ASGI app
    that answers every error itself, so routing and the exception middleware would only
    add their cost (about 5% of its CPU per request, bench/endpoint.py). Its route stays in
    the route list for everything else (other methods get Starlette's 405)."""

    def __init__(self, *, webhook: StripeWebhook, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.webhook = webhook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == WEBHOOK_PATH:
            scope["app"] = self
            await self.webhook(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _routes(parts: AppParts, webhook: StripeWebhook) -> list[BaseRoute]:
    health = Health(engine=parts.engine)
    routes: list[BaseRoute] = [
        Route("/healthz", health.handle, methods=["GET"]),
        Route(WEBHOOK_PATH, webhook, methods=["POST"]),
    ]
    if parts.bolt_app is not None:
        routes.append(slack_route(parts.bolt_app))
    return routes


def _services(parts: AppParts) -> list[Service]:
    services: list[Service] = [parts.writer]
    if parts.rejections is not None:
        services.append(ThreadService("webhook-rejections", parts.rejections.run))
    if parts.worker is not None:
        services.append(parts.worker)
    settings, engine, clock = parts.settings, parts.engine, parts.clock
    services.append(
        ThreadService(
            "sender", lambda stop: run_sender(settings, engine=engine, stop=stop, clock=clock)
        )
    )
    if parts.bolt_app is not None and settings.slack_app_token is not None:
        services.append(_SocketMode(parts.bolt_app, settings))
    return services


class _SocketMode:
    name = "socket-mode"

    def __init__(self, bolt_app: App, settings: Settings) -> None:
        self.bolt_app, self.settings, self.handler = bolt_app, settings, None

    def start(self) -> None:
        self.handler = start_socket_mode(self.bolt_app, self.settings)

    def stop(self) -> None:
        if self.handler is not None:
            self.handler.close()


def _announce(settings: Settings) -> None:
    """The few start-up lines an operator needs; never a secret."""
    if not settings.stripe_webhook_secret:
        logger.warning(
            "stripe.webhooks_disabled: STRIPE_WEBHOOK_SECRET is not set; POST /stripe/webhook "
            "answers 503 until it is"
        )
    if not settings.slack_enabled:
        logger.info(
            "slack.console_mode: Slack is not configured (SLACK_BOT_TOKEN is not set); "
            "messages will be printed to this log instead of posted"
        )
    if not settings.worker_embedded:
        logger.info("worker.external: WORKER_EMBEDDED=false; run `billbot worker` to apply events")


def _lifespan(parts: AppParts, *, dispose_engine: bool):
    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        _announce(parts.settings)
        started: list[Service] = []
        try:
            for service in parts.services:
                service.start()
                started.append(service)
            yield
        finally:
            for service in reversed(started):
                try:
                    service.stop()
                except Exception:
                    logger.exception("app.service_stop_failed service=%s", service.name)
            if dispose_engine:
                parts.engine.dispose()

    return lifespan

"""`billbot serve`: migrate, then serve the web app (and, by default, the worker and the
scheduler) with uvicorn."""

from __future__ import annotations

import argparse

import uvicorn

from bot.app import create_app
from bot.commands.migrate import migrate_or_explain
from bot.scheduler import JobScheduler
from bot.settings import Settings
from storage.db import make_engine


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("serve", help="migrate, then serve webhooks (and the worker)")
    parser.add_argument("--host", help="interface to listen on (default: HOST)")
    parser.add_argument("--port", type=int, help="port to listen on (default: PORT)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    if not migrate_or_explain(engine):
        engine.dispose()
        return 1
    host, port = args.host or settings.host, args.port or settings.port
    services = (
        [JobScheduler.from_settings(settings, engine=engine)] if settings.scheduler_embedded else []
    )
    app = create_app(settings, engine=engine, extra_services=services)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_config=None,  # keep billbot's one log format
            log_level=settings.log_level.lower(),
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        engine.dispose()
    return 0

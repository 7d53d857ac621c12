"""`billbot migrate`: bring the database schema to the newest revision."""

from __future__ import annotations

import argparse
import logging

from sqlalchemy import Engine

from bot.inbox_writer import describe_error
from bot.settings import Settings
from storage.db import make_engine
from storage.migrate import upgrade

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("migrate", help="apply database migrations")
    parser.set_defaults(handler=run)


def migrate_or_explain(engine: Engine) -> bool:
    """Upgrade, or log why not in one line (no traceback for a newcomer). True on success."""
    try:
        upgrade(engine)
    except Exception as exc:
        logger.error("db.migrate_failed url=%s error=%s", engine.url, describe_error(exc))
        return False
    logger.info("db.migrated url=%s", engine.url)
    return True


def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        return 0 if migrate_or_explain(engine) else 1
    finally:
        engine.dispose()

"""`billbot worker`: apply inbox events in this process (beside `serve` with WORKER_EMBEDDED=false).

Any number may run against PostgreSQL. SIGINT/SIGTERM finish the batch in hand, then exit."""

from __future__ import annotations

import argparse
import logging
import signal

from bot.commands.migrate import migrate_or_explain
from bot.services import standard_reactions
from bot.settings import Settings
from bot.worker import Worker
from storage.db import make_engine

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("worker", help="apply stored events to the store")
    parser.add_argument(
        "--drain", action="store_true", help="apply what is due now, then exit (no polling)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        if not migrate_or_explain(engine):
            return 1
        worker = Worker.from_settings(
            settings, engine=engine, reactions=standard_reactions(settings)
        )
        if args.drain:
            result = worker.drain()
            print(
                f"applied {result.applied}, ignored {result.ignored}, "
                f"retrying {result.retrying}, dead {result.dead}"
            )
            return 0
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: worker.request_stop())
        logger.info("worker.running batch_size=%d threads=%d", worker.batch_size, worker.threads)
        worker.run()
        logger.info("worker.stopped applied=%d", worker.totals.applied)
        return 0
    finally:
        engine.dispose()

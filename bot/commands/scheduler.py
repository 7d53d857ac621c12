"""`billbot scheduler`: run the scheduled jobs in this process, alone (for deployments that
run `billbot serve` with SCHEDULER_EMBEDDED=false). Several may run against one PostgreSQL:
each job run takes a lease, so each run happens once. SIGINT/SIGTERM stop it."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from bot.commands.migrate import migrate_or_explain
from bot.scheduler import JobScheduler
from bot.settings import Settings
from storage.db import make_engine

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("scheduler", help="run the scheduled jobs (alone)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    stop = threading.Event()
    try:
        if not migrate_or_explain(engine):
            return 1
        scheduler = JobScheduler.from_settings(settings, engine=engine)
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: stop.set())
        scheduler.start()
        try:
            stop.wait()
        finally:
            scheduler.stop()
        return 0
    finally:
        engine.dispose()

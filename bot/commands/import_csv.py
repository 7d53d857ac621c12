"""`billbot import-csv --kind customers|subscriptions|invoices FILE`: load a Stripe Dashboard export."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TextIO

from bot.commands.backfill import since_date
from bot.settings import Settings
from handlers.revenue.baseline import record_imported_mrr
from handlers.sync.backfill import ApplyObject
from handlers.sync.csv_import import KINDS, CsvImportError, import_csv
from storage.db import make_engine
from storage.migrate import upgrade


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "import-csv",
        help="import a Stripe Dashboard CSV export (customers, subscriptions or invoices)",
        description="Import a Stripe Dashboard export; for teams that cannot use an API key. Never posts to Slack.",
    )
    parser.add_argument("--kind", required=True, choices=KINDS, help="what the export holds")
    parser.add_argument(
        "file", type=Path, metavar="FILE", help="the CSV file downloaded from the Dashboard"
    )
    parser.add_argument(
        "--exported-at",
        type=since_date,
        metavar="TIME",
        help="when the export was made (UTC; default: the file's modification time). "
        "Webhook data newer than this wins over the file.",
    )
    parser.add_argument(
        "--live", action="store_true", help="the export is from live mode (default: test mode)"
    )
    parser.set_defaults(handler=run_import)


def run_import(
    args: argparse.Namespace,
    settings: Settings,
    *,
    apply_object: ApplyObject | None = None,
    stderr: TextIO | None = None,
) -> int:
    err = stderr or sys.stderr
    path: Path = args.file
    if not path.is_file():
        print(f"billbot import-csv: {path} is not a file", file=err)
        return 2
    exported_at = args.exported_at or datetime.fromtimestamp(path.stat().st_mtime, UTC)
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        with path.open(encoding="utf-8-sig", newline="") as stream:
            result = import_csv(
                engine=engine,
                kind=args.kind,
                stream=stream,
                exported_at=exported_at,
                apply_object=apply_object,
                livemode=args.live,
            )
        record_imported_mrr(engine, settings, now=datetime.now(UTC))  # imports have no events
    except CsvImportError as exc:
        print(f"billbot import-csv: {path.name}: {exc}", file=err)
        return 1
    except UnicodeDecodeError:
        print(
            f"billbot import-csv: {path.name} is not UTF-8 text; export it again as CSV", file=err
        )
        return 1
    finally:
        engine.dispose()
    print(
        f"imported {result.rows:,} {result.kind} from {path.name}: {result.applied:,} written",
        file=err,
    )
    return 0

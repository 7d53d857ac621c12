"""`billbot revenue [--month YYYY-MM] [--json]`: the month's MRR, movements and ratios."""

from __future__ import annotations

import argparse
import json
import sys

from bot.settings import Settings
from handlers.revenue.fx import FxRatesError
from handlers.revenue.report import InvalidPeriod, report_as_json, revenue_report
from handlers.revenue.text import format_report_text
from storage.db import make_engine, read_scope
from storage.types import utcnow


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "revenue", help="MRR, movements, churn, ARPU, LTV and NRR for a month"
    )
    parser.add_argument(
        "--month", metavar="YYYY-MM", help="a past or the current month (default: this month)"
    )
    parser.add_argument(
        "--json", action="store_true", help="print the figures as JSON (minor units)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        with read_scope(engine) as session:
            report = revenue_report(session, period=args.month, now=utcnow(), settings=settings)
    except (InvalidPeriod, FxRatesError) as exc:
        print(f"billbot revenue: {exc}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if args.json:
        # The JSON keeps exactly its documented keys; what it cannot say goes to stderr.
        for note in report.notes:
            print(f"billbot revenue: {note}", file=sys.stderr)
        print(json.dumps(report_as_json(report), indent=2))
    else:
        print(format_report_text(report))
    return 0

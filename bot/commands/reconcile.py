"""`billbot reconcile`: compare the store with Stripe once, repair what differs, and queue the
drift report for Slack when something was wrong (the same `run_reconcile` the scheduled
`reconcile` job calls). Prints what it checked, found and did.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import TextIO

import stripe

from bot.settings import Settings
from bot.stripe_client import StripeKeyError, api_key, make_stripe_client
from handlers.sync.backfill import ApplyObject
from handlers.sync.drift import DriftReport, drift_report_text
from handlers.sync.jobs import drift_channel, run_reconcile
from handlers.sync.pacing import Pacer, requests_per_second_for
from storage.db import make_engine
from storage.migrate import upgrade
from storage.types import utcnow


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reconcile",
        help="find missed Stripe events and repair subscriptions and open invoices that drifted",
        description="Compare the store with Stripe (events of the last 30 days, live "
        "subscriptions, open invoices); queue a drift report for Slack when something was wrong.",
    )
    parser.set_defaults(handler=run_reconcile_command)


def run_reconcile_command(
    args: argparse.Namespace,
    settings: Settings,
    *,
    apply_object: ApplyObject | None = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    now: Callable[[], datetime] = utcnow,
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        client = make_stripe_client(settings)
        pacer = Pacer(
            max_per_second=requests_per_second_for(api_key(settings)), clock=clock, sleep=sleep
        )
    except StripeKeyError as exc:
        print(f"billbot reconcile: {exc}", file=err)
        return 2
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        report = run_reconcile(
            engine=engine,
            settings=settings,
            client=client,
            pacer=pacer,
            apply_object=apply_object,
            now=now,
        )
    except stripe.StripeError as exc:
        reason = exc.user_message or type(exc).__name__
        print(
            f"billbot reconcile: Stripe did not answer ({reason}); nothing lost, run it again",
            file=err,
        )
        return 1
    finally:
        engine.dispose()
    print(outcome_text(report, settings), file=out)
    return 0


def outcome_text(report: DriftReport, settings: Settings) -> str:
    checked = ", ".join(f"{n:,} {kind}" for kind, n in sorted(report.checked.items()))
    lines = [f"checked {checked or 'nothing'} against Stripe"]
    lines.append(drift_report_text(report) or "no drift: the store matches Stripe")
    if report.ledger_lines:
        lines.append(f"{report.ledger_lines:,} MRR ledger lines written for repaired subscriptions")
    if report.queued:
        lines.append(f"drift report queued for {drift_channel(settings)}")
    elif report.worth_posting:
        lines.append(
            "drift report not queued (no channel, or the same findings were queued before)"
        )
    return "\n".join(lines)

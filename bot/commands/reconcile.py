"""`billbot reconcile`: compare the store with Stripe once, repair what differs, print the report.

The scheduled `reconcile` job (issue 6) calls the same `Reconciler`; this command is for
running it by hand. It never posts to Slack itself.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import TextIO

import stripe

from bot.settings import Settings
from bot.stripe_client import StripeKeyError, api_key, make_stripe_client
from handlers.sync.backfill import ApplyObject
from handlers.sync.pacing import Pacer, requests_per_second_for
from handlers.sync.reconcile import Reconciler, RefeedEvent, drift_report_text, insert_missed_event
from storage.db import make_engine
from storage.migrate import upgrade


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "reconcile",
        help="find missed Stripe events and repair subscriptions and open invoices that drifted",
        description="Compare the store with Stripe (events of the last 30 days, live subscriptions, open invoices).",
    )
    parser.set_defaults(handler=run_reconcile)


def run_reconcile(
    args: argparse.Namespace,
    settings: Settings,
    *,
    apply_object: ApplyObject | None = None,
    refeed_event: RefeedEvent = insert_missed_event,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    out, err = stdout or sys.stdout, stderr or sys.stderr
    try:
        client = make_stripe_client(settings)
        rate = requests_per_second_for(api_key(settings))
    except StripeKeyError as exc:
        print(f"billbot reconcile: {exc}", file=err)
        return 2
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        reconciler = Reconciler(
            engine=engine,
            client=client,
            pacer=Pacer(max_per_second=rate, clock=clock, sleep=sleep),
            apply_object=apply_object,
            refeed_event=refeed_event,
        )
        report = reconciler.run()
    except stripe.StripeError as exc:
        print(
            f"billbot reconcile: Stripe did not answer ({exc.user_message or type(exc).__name__}); nothing lost, run it again",
            file=err,
        )
        return 1
    finally:
        engine.dispose()
    checked = ", ".join(f"{n:,} {kind}" for kind, n in sorted(report.checked.items())) or "nothing"
    print(f"checked {checked} against Stripe", file=out)
    print(drift_report_text(report) or "no drift: the store matches Stripe", file=out)
    return 0

"""`billbot backfill [--since DATE] [--only TYPES] [--restart]`: read Stripe's history into the store.

Progress goes to stderr: one line per object type, rewritten in place on a terminal, and
plain lines (every few seconds and at the end of each type) when stderr is a file or a pipe.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TextIO

from bot.settings import Settings
from bot.stripe_client import StripeKeyError, api_key, make_stripe_client
from handlers.revenue.baseline import record_imported_mrr
from handlers.sync.backfill import (
    OBJECT_TYPES,
    ApplyObject,
    Backfill,
    BackfillInterrupted,
    Progress,
    UnknownObjectType,
    parse_only,
)
from handlers.sync.pacing import Pacer, requests_per_second_for
from storage.db import make_engine
from storage.migrate import upgrade


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "backfill",
        help="read customers, subscriptions, invoices, charges and refunds from Stripe's API",
        description="Read Stripe's history into the store (resumable; never posts to Slack).",
    )
    parser.add_argument(
        "--since",
        type=since_date,
        metavar="DATE",
        help="only objects created on or after DATE (UTC)",
    )
    parser.add_argument(
        "--only",
        type=only_types,
        metavar="TYPES",
        default=OBJECT_TYPES,
        help=f"comma list of: {','.join(OBJECT_TYPES)}",
    )
    parser.add_argument(
        "--restart", action="store_true", help="ignore saved cursors and read from the newest again"
    )
    parser.add_argument(
        "--max-rps",
        type=int,
        metavar="N",
        help="requests per second (default: 25 test keys, 100 live)",
    )
    parser.set_defaults(handler=run_backfill)


def since_date(value: str) -> datetime:
    """`2024-01-31` or an ISO time (`2024-01-31T12:00:00Z`); a time without a zone is UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not a date; use YYYY-MM-DD or an ISO time such as 2024-01-31T12:00:00Z"
        ) from None
    parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    if parsed > datetime.now(UTC):
        raise argparse.ArgumentTypeError(
            f"{value!r} is in the future; nothing was created after it yet"
        )
    return parsed


def only_types(value: str) -> tuple[str, ...]:
    try:
        return parse_only(value)
    except UnknownObjectType as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def run_backfill(
    args: argparse.Namespace,
    settings: Settings,
    *,
    apply_object: ApplyObject | None = None,
    stderr: TextIO | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    err = stderr or sys.stderr
    try:
        client = make_stripe_client(settings)
        rate = args.max_rps or requests_per_second_for(api_key(settings))
    except StripeKeyError as exc:
        print(f"billbot backfill: {exc}", file=err)
        return 2
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
        backfill = Backfill(
            engine=engine,
            client=client,
            pacer=Pacer(max_per_second=rate, clock=clock, sleep=sleep),
            apply_object=apply_object,
            on_progress=ProgressPrinter(err, clock=clock),
        )
        results = backfill.run(only=args.only, since=args.since, restart=args.restart)
        record_imported_mrr(engine, settings, now=datetime.now(UTC))  # history has no events
    except BackfillInterrupted as exc:
        print(f"billbot backfill: {exc}", file=err)
        return 1
    finally:
        engine.dispose()
    total = sum(r.fetched for r in results)
    print(
        f"backfill done: {total:,} objects read, {sum(r.applied for r in results):,} written",
        file=err,
    )
    return 0


class ProgressPrinter:
    """Renders `Progress` updates: in place on a terminal, plain lines otherwise."""

    def __init__(
        self, stream: TextIO, *, clock: Callable[[], float] = time.monotonic, interval: float = 5.0
    ):
        self.stream = stream
        self.clock = clock
        self.interval = interval
        self.tty = bool(getattr(stream, "isatty", lambda: False)())
        self._first: dict[str, tuple[float, int]] = {}
        self._last_line: dict[str, float] = {}

    def __call__(self, progress: Progress) -> None:
        now = self.clock()
        first_at, first_count = self._first.setdefault(
            progress.object_type, (now, progress.fetched)
        )
        elapsed = now - first_at
        rate = (progress.fetched - first_count) / elapsed if elapsed > 0 else None
        line = format_progress(progress, rate)
        if self.tty:
            self.stream.write("\r\x1b[2K" + line + ("\n" if progress.done else ""))
        elif (
            progress.done
            or now - self._last_line.get(progress.object_type, -self.interval) >= self.interval
        ):
            self.stream.write(line + "\n")
            self._last_line[progress.object_type] = now
        self.stream.flush()


def format_progress(progress: Progress, rate: float | None) -> str:
    parts = [
        f"{progress.object_type:<13}",
        f"{progress.fetched:>9,} read",
        f"{progress.applied:>9,} written",
    ]
    if progress.skipped:
        parts.append(f"{progress.skipped:,} skipped")
    parts.append(f"{rate:,.0f}/s" if rate is not None else "")
    if progress.resumed_from:
        parts.append(f"(resumed after {progress.resumed_from})")
    if progress.done:
        parts.append("done")
    return "  ".join(part for part in parts if part)

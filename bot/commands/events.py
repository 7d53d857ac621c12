"""`billbot events`: what is in the inbox; `billbot events retry ID` re-queues one event."""

from __future__ import annotations

import argparse

from bot.settings import Settings
from storage import inbox
from storage.db import make_engine, read_scope, session_scope
from storage.models.inbox import EventStatus


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "events", help="list stored events; `events retry ID` re-queues one"
    )
    parser.add_argument(
        "--failed", action="store_true", help="only events that failed (retrying or dead)"
    )
    parser.add_argument("--limit", type=_positive, default=50, help="how many, newest first (50)")
    parser.set_defaults(handler=run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    retry = actions.add_parser("retry", help="re-queue a failed, dead or ignored event now")
    retry.add_argument("event_id", metavar="ID")


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        if args.action == "retry":
            return _retry(engine, args.event_id)
        with read_scope(engine) as session:
            entries = inbox.list_events(session=session, failed_only=args.failed, limit=args.limit)
            counts = inbox.count_by_status(session=session)
        summary = ", ".join(f"{status} {count}" for status, count in sorted(counts.items()))
        print(f"inbox: {summary or 'empty'}")
        _print_entries(entries, failed=args.failed)
        return 0
    finally:
        engine.dispose()


def _retry(engine, event_id: str) -> int:
    with session_scope(engine) as session:
        previous = inbox.requeue(session=session, event_id=event_id)
    if previous is None:
        print(f"billbot: no event {event_id!r} in the inbox (see `billbot events`)")
        return 1
    if previous == EventStatus.APPLIED:
        print(f"{event_id} was already applied; nothing to retry")
        return 1
    print(f"{event_id} re-queued (was {previous}); the worker applies it next")
    return 0


def _print_entries(entries: list[inbox.InboxEntry], *, failed: bool) -> None:
    if not entries:
        print("no failed events" if failed else "no events")
        return
    for entry in entries:
        line = (
            f"{entry.id}  {entry.type}  {entry.status}  attempts={entry.attempts}  "
            f"created={entry.created:%Y-%m-%dT%H:%M:%SZ}  source={entry.source}"
        )
        if entry.next_attempt_at is not None:
            line += f"  next_attempt={entry.next_attempt_at:%Y-%m-%dT%H:%M:%SZ}"
        print(line)
        if entry.last_error and (failed or entry.status != EventStatus.APPLIED):
            print(f"    error: {entry.last_error.splitlines()[0]}")

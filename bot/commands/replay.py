"""`billbot replay FILE...`: feed exported events through the inbox, for history and recovery.

Accepts a JSON array of events, JSON lines (one event a line), or the page `GET /v1/events`
returns (`{"object": "list", "data": [...]}`). Events go through the same checks and the
same inbox insert as webhooks (minus the signature) with source="replay", so a replay is
idempotent: events already stored are counted as duplicates and never applied twice.
History never posts to Slack (reactions see source="replay").

Exit status 1 when an entry was invalid (the valid ones are still stored and applied).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from bot.commands.migrate import migrate_or_explain
from bot.services import standard_reactions
from bot.settings import Settings
from bot.webhook import inbox_event
from bot.worker import Worker
from handlers.stripe.events import InvalidEvent, parse_event
from storage import inbox
from storage.db import make_engine

BATCH = 500
PROGRESS_EVERY = 5000
SHOW_INVALID = 20


@dataclass
class ReplayCounts:
    new: int = 0
    duplicate: int = 0
    invalid: list[str] = field(default_factory=list)


class UnreadableFile(Exception):
    pass


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("replay", help="import exported events (history, recovery)")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")
    parser.add_argument(
        "--no-apply", action="store_true", help="store only; leave applying to the worker"
    )
    parser.set_defaults(handler=run)


def read_entries(text: str) -> Iterator[tuple[str, str | None, object]]:
    """Yield (where, exact text or None, decoded value) for each entry of an export.

    `where` is "line N" for JSON lines and "index N" for arrays and pages."""
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("["):
        yield from _array(_load_whole(stripped), "index")
        return
    if stripped.startswith("{"):
        try:
            whole = json.loads(stripped)
        except json.JSONDecodeError:
            whole = None  # more than one value: JSON lines
        if isinstance(whole, dict) and isinstance(whole.get("data"), list):
            yield from _array(whole["data"], "data index")
            return
        if whole is not None:
            yield "index 0", None, whole
            return
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                yield f"line {number}", line.strip(), json.loads(line)
            except json.JSONDecodeError:
                yield f"line {number}", line, None


def _load_whole(text: str) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UnreadableFile(f"not valid JSON (line {exc.lineno}, column {exc.colno})") from exc


def _array(items: object, label: str) -> Iterator[tuple[str, str | None, object]]:
    if not isinstance(items, list):
        raise UnreadableFile("expected a JSON array of events")
    for index, item in enumerate(items):
        yield f"{label} {index}", None, item


def replay_file(path: Path, *, engine: Engine, settings: Settings) -> ReplayCounts:
    counts = ReplayCounts()
    pending: list[inbox.NewInboxEvent] = []
    started = time.monotonic()
    entries = read_entries(path.read_text(encoding="utf-8"))
    for seen, (where, exact, value) in enumerate(entries, start=1):
        try:
            if value is None:
                raise InvalidEvent("not valid JSON")
            event = parse_event(value if isinstance(value, dict) else json.dumps(value))
            payload = exact if exact is not None else json.dumps(value, separators=(",", ":"))
            pending.append(inbox_event(event, payload=payload, source="replay", settings=settings))
        except InvalidEvent as exc:
            counts.invalid.append(f"{where}: {exc}")
        if len(pending) >= BATCH:
            _store(engine, pending, counts)
        if seen % PROGRESS_EVERY == 0:
            rate = seen / max(time.monotonic() - started, 1e-9)
            print(f"replay: {path.name}: {seen} read ({rate:,.0f}/s)", file=sys.stderr, flush=True)
    _store(engine, pending, counts)
    return counts


def _store(engine: Engine, pending: list[inbox.NewInboxEvent], counts: ReplayCounts) -> None:
    if not pending:
        return
    unique = {event.id: event for event in pending}  # the same id twice in one file
    with engine.begin() as connection:
        new = inbox.insert_events(connection=connection, events=list(unique.values()))
    counts.new += len(new)
    counts.duplicate += len(pending) - len(new)
    pending.clear()


def run(args: argparse.Namespace, settings: Settings) -> int:
    engine = make_engine(settings.database_url)
    try:
        if not migrate_or_explain(engine):
            return 1
        status = 0
        for path in args.files:
            status = max(status, _replay_one(path, engine=engine, settings=settings))
        if not args.no_apply:
            result = Worker.from_settings(
                settings, engine=engine, reactions=standard_reactions(settings)
            ).drain()
            print(
                f"applied {result.applied}, ignored {result.ignored}, "
                f"retrying {result.retrying}, dead {result.dead}"
            )
        return status
    finally:
        engine.dispose()


def _replay_one(path: Path, *, engine: Engine, settings: Settings) -> int:
    try:
        counts = replay_file(path, engine=engine, settings=settings)
    except (OSError, UnicodeDecodeError, UnreadableFile) as exc:
        print(f"billbot: cannot replay {path}: {exc}", file=sys.stderr)
        return 1
    print(f"{path}: {counts.new} new, {counts.duplicate} duplicate, {len(counts.invalid)} invalid")
    for line in counts.invalid[:SHOW_INVALID]:
        print(f"  {line}")
    if len(counts.invalid) > SHOW_INVALID:
        print(f"  ... and {len(counts.invalid) - SHOW_INVALID} more")
    return 1 if counts.invalid else 0

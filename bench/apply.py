"""The worker's rate: events applied to the store per second, with the real handlers and the
standard reactions (the MRR ledger, then alerts) that every billbot worker runs.

    .venv/bin/python bench/apply.py [--events 20000] [--database sqlite|postgres] [--profile FILE]
                                    [--workers N]   (N processes at once, PostgreSQL)
                                    [--threads N]   (WORKER_THREADS of each worker, PostgreSQL)

The events (bench/events.py) are queued in the inbox as the webhook stores them, then one
`Worker.drain()` applies them in batches of WORKER_BATCH_SIZE, as `billbot worker` does; the
time of the drain alone is the rate. Every event is checked to have been applied (none
failed, none dead), and the store is checked to hold what the events describe.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, func, select  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from bench.events import event_stream  # noqa: E402
from bot.services import standard_reactions  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.webhook import inbox_event  # noqa: E402
from bot.worker import Worker  # noqa: E402
from handlers.stripe.apply import BatchResult  # noqa: E402
from handlers.stripe.events import parse_event  # noqa: E402
from storage import inbox  # noqa: E402
from storage.db import make_engine  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Alert, Customer, MrrMovement, Subscription  # noqa: E402

POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
QUEUE_CHUNK = 1000
DEFAULT_THREADS = Settings.model_fields["worker_threads"].default


@dataclass(frozen=True, slots=True)
class ApplyRun:
    events: int
    seconds: float
    cpu_seconds: float  # this process's CPU time during the drain (the database's own, on PostgreSQL, is not in it)
    applied: int
    failed: int
    customers: int
    subscriptions: int
    ledger_lines: int
    alerts: int

    @property
    def rate(self) -> float:
        return self.events / self.seconds


@contextlib.contextmanager
def temporary_database(kind: str, *, postgres_url: str = POSTGRES_URL) -> Iterator[str]:
    """A fresh, migrated database URL: a SQLite file, or a PostgreSQL database on
    `postgres_url`'s server that is dropped afterwards."""
    if kind == "sqlite":
        with tempfile.TemporaryDirectory(prefix="billbot-bench-") as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            _migrate(url)
            yield url
        return
    admin_url = make_url(postgres_url)
    name = f"billbot_bench_{uuid.uuid4().hex[:10]}"
    admin = make_engine(admin_url.render_as_string(hide_password=False)).execution_options(
        isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = admin_url.set(database=name).render_as_string(hide_password=False)
        _migrate(url)
        yield url
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def _migrate(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def bench_settings(database_url: str, threads: int = DEFAULT_THREADS) -> Settings:
    """Console mode (no Slack token): alerts go to the console channel's outbox, as with `make run`."""
    return Settings(
        _env_file=None, database_url=database_url, log_level="WARNING", worker_threads=threads
    )


def queue_events(engine: Engine, bodies: list[bytes], settings: Settings) -> None:
    """Store the events in the inbox exactly as the webhook does (pending, source webhook)."""
    for first in range(0, len(bodies), QUEUE_CHUNK):
        rows = []
        for body in bodies[first : first + QUEUE_CHUNK]:
            text = body.decode()
            rows.append(
                inbox_event(parse_event(text), payload=text, source="webhook", settings=settings)
            )
        with engine.begin() as connection:
            inbox.append_events(connection=connection, events=rows)


def measure_apply(
    database_url: str,
    count: int,
    *,
    profile: str | None = None,
    workers: int = 1,
    threads: int = DEFAULT_THREADS,
) -> ApplyRun:
    """Queue `count` events, then time their draining: by this process's worker, or by
    `workers` worker processes at once (PostgreSQL: they claim disjoint batches), each with
    `threads` threads (WORKER_THREADS)."""
    settings = bench_settings(database_url, threads)
    engine = make_engine(database_url)
    try:
        bodies = [json.dumps(event, indent=2).encode() for event in event_stream(count)]
        queue_events(engine, bodies, settings)
        if workers > 1:
            seconds, cpu, result = _drain_in_processes(database_url, workers, threads)
        else:
            worker = Worker.from_settings(
                settings, engine=engine, reactions=standard_reactions(settings)
            )
            with _profiled(profile):
                started, cpu_started = time.perf_counter(), time.process_time()
                result = worker.drain()
                seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        with engine.connect() as connection:

            def count_of(table) -> int:
                return connection.execute(select(func.count()).select_from(table)).scalar_one()

            return ApplyRun(
                events=count,
                seconds=seconds,
                cpu_seconds=cpu,
                applied=result.applied,
                failed=result.retrying + result.dead,
                customers=count_of(Customer.__table__),
                subscriptions=count_of(Subscription.__table__),
                ledger_lines=count_of(MrrMovement.__table__),
                alerts=count_of(Alert.__table__),
            )
    finally:
        engine.dispose()


def _drain_in_processes(
    database_url: str, workers: int, threads: int
) -> tuple[float, float, BatchResult]:
    """Start `workers` processes, let each get ready (imports, engine), then start them
    together; the time is from that start until the last one found nothing left to do."""
    command = [sys.executable, __file__, "--drain", database_url, "--threads", str(threads)]
    children = [
        subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        for _ in range(workers)
    ]
    for child in children:
        if child.stdout.readline().strip() != "ready":
            raise SystemExit("a worker process did not start")
    started = time.time()
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    reports = [json.loads(child.stdout.readline()) for child in children]
    for child in children:
        child.wait(60)
    total = BatchResult()
    for report in reports:
        total.add(BatchResult(**report["result"]))
    seconds = max(report["finished"] for report in reports) - started
    return seconds, sum(report["cpu"] for report in reports), total


def _drain_child(database_url: str, threads: int) -> None:
    """One worker process of `_drain_in_processes`: ready, wait for go, drain, report."""
    settings = bench_settings(database_url, threads)
    engine = make_engine(database_url)
    worker = Worker.from_settings(settings, engine=engine, reactions=standard_reactions(settings))
    worker.announce()  # before the start: each worker's first batch already sees the others
    print("ready", flush=True)
    sys.stdin.readline()
    cpu_started = time.process_time()
    result = worker.drain()
    report = {
        "finished": time.time(),
        "cpu": time.process_time() - cpu_started,
        "result": dataclasses.asdict(result),
    }
    print(json.dumps(report), flush=True)
    worker.withdraw()
    engine.dispose()


@contextlib.contextmanager
def _profiled(path: str | None) -> Iterator[None]:
    if path is None:
        yield
        return
    import cProfile

    profiler = cProfile.Profile()
    profiler.enable()
    try:
        yield
    finally:
        profiler.disable()
        profiler.dump_stats(path)


def describe(run: ApplyRun) -> str:
    return (
        f"{run.rate:8,.0f} events/s, {run.events / run.cpu_seconds:,.0f}/CPU-s  ({run.applied} applied, {run.failed} failed; "
        f"{run.customers} customers, {run.subscriptions} subscriptions, "
        f"{run.ledger_lines} ledger lines, {run.alerts} alerts)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--postgres-url", default=POSTGRES_URL)
    parser.add_argument("--profile", help="write cProfile stats of the drain to this file")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes draining together (postgres)"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=DEFAULT_THREADS,
        help="threads of each worker (WORKER_THREADS; SQLite always uses one)",
    )
    parser.add_argument("--drain", help=argparse.SUPPRESS)  # a child of --workers N
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.drain:
        _drain_child(args.drain, args.threads)
        return
    if args.workers > 1 and args.database != "postgres":
        parser.error("--workers needs --database postgres (SQLite has one writer at a time)")
    with temporary_database(args.database, postgres_url=args.postgres_url) as url:
        run = measure_apply(
            url, args.events, profile=args.profile, workers=args.workers, threads=args.threads
        )
    label = args.database if args.workers == 1 else f"{args.database}×{args.workers}"
    if args.database == "postgres":
        label += f" {args.threads}t"
    print(f"{label:8} {describe(run)}")


if __name__ == "__main__":
    main()

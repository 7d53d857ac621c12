"""billbot's speed beside a bare Starlette endpoint, measured in the same run (`make bench`).

    .venv/bin/python bench/run.py [--rounds 5] [--requests 20000] [--events 20000]
                                  [--postgres-url URL] [--skip-postgres]

1. Acceptance: signed Stripe events (bench/events.py: realistic payloads from the test
   factories, unique ids) POSTed over HTTP on 16 keep-alive connections (bench/loadgen.py)
   to a bare Starlette POST endpoint (bench/bare_app.py) and to billbot's
   POST /stripe/webhook, each served alone by uvicorn in its own process with the same
   options; billbot answers 200 only once the event is committed to its inbox (SQLite,
   WORKER_EMBEDDED=false so acceptance is measured alone). Then the same again against
   `billbot serve` as `make run` starts it, its worker applying the events as they come
   (WORKER_EMBEDDED=true, a fresh SQLite file each round). Bare and billbot alternate,
   round by round.
2. Applying: the worker drains the same kind of events from the inbox into the store with
   the real handlers and the standard reactions (MRR ledger, alerts), on SQLite and on a
   temporary PostgreSQL database (bench/apply.py): one worker process (on PostgreSQL with
   its default WORKER_THREADS=2, and for comparison with one thread), and on PostgreSQL also
   two worker processes together (`billbot worker` twice, as a larger deployment runs).

Every figure is compared with the bare endpoint measured in the same minutes: acceptance
alternates with the bare endpoint round by round, and each applying round is followed by a
bare round. The machine's speed drifts over a run (a shared VM: the bare endpoint moved
between 12,000 and 21,000 req/s here), so a baseline taken only at the start would judge
the later phases against another machine. Medians of the rounds are printed, each with its
own phase's bare median and the ratio to it.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.apply import (  # noqa: E402
    DEFAULT_THREADS,
    POSTGRES_URL,
    describe,
    measure_apply,
    temporary_database,
)
from bench.events import encoded, event_stream  # noqa: E402
from bench.loadgen import encode_post, run_load  # noqa: E402

SECRET = "whsec_bench_secret"
PATH = "/stripe/webhook"
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def signed_requests(port: int, bodies: list[bytes]) -> list[bytes]:
    """Requests as Stripe sends them: `Stripe-Signature: t=...,v1=HMAC(secret, "t.body")`."""
    now = int(time.time())
    requests = []
    for body in bodies:
        mac = hmac.new(SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
        headers = {"Content-Type": "application/json", "Stripe-Signature": f"t={now},v1={mac}"}
        requests.append(encode_post(HOST, port, PATH, body, headers))
    return requests


def serve(kind: str, port: int, database_url: str) -> None:
    """Child process: serve the bare endpoint or billbot (with its worker: "billbot+worker")
    until terminated."""
    import uvicorn

    if kind == "bare":
        from bench.bare_app import app
    else:
        os.environ.update(
            STRIPE_WEBHOOK_SECRET=SECRET,
            DATABASE_URL=database_url,
            WORKER_EMBEDDED="true" if kind == "billbot+worker" else "false",
            LOG_LEVEL="WARNING",
        )
        from bot.app import create_app
        from bot.settings import Settings
        from storage.db import make_engine
        from storage.migrate import upgrade

        settings = Settings(_env_file=None)
        engine = make_engine(settings.database_url)
        upgrade(engine)  # as `billbot serve` does on start
        app = create_app(settings, engine=engine)
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)


def wait_ready(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode}")
        try:
            with socket.create_connection((HOST, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the server did not start within 60 s")


def accept_rate(kind: str, bodies: list[bytes], warmup: int, database_url: str) -> float:
    """Requests per second the server answered, all with 200 (anything else stops the run)."""
    port = free_port()
    command = [
        sys.executable,
        __file__,
        "--serve",
        kind,
        "--port",
        str(port),
        "--database-url",
        database_url,
    ]
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        wait_ready(port, process)
        requests = signed_requests(port, bodies)
        run_load(HOST, port, requests[:warmup])
        result = run_load(HOST, port, requests[warmup:])
    finally:
        process.terminate()
        process.wait(30)
    if set(result.statuses) != {200}:
        raise SystemExit(f"{kind} answered {dict(result.statuses)}; expected only 200")
    print(f"  accept  {kind:14} {result.rate:8,.0f} req/s", flush=True)
    return result.rate


def measure_acceptance(
    args: argparse.Namespace,
) -> tuple[list[float], list[float], list[float]]:
    """Rates of the bare endpoint, of billbot alone, and of billbot with its worker."""
    bare, billbot, with_worker = [], [], []
    per_round = args.requests + args.warmup
    events = event_stream(per_round * args.rounds, start=int(time.time()) - 3600)
    bodies = list(encoded(events))
    with tempfile.TemporaryDirectory(prefix="billbot-bench-") as tmp:
        database_url = f"sqlite:///{tmp}/accept.db"
        for number in range(args.rounds):
            print(f"round {number + 1} of {args.rounds}", flush=True)
            mine = bodies[number * per_round : (number + 1) * per_round]
            bare.append(accept_rate("bare", mine, args.warmup, database_url))
            billbot.append(accept_rate("billbot", mine, args.warmup, database_url))
            fresh = f"sqlite:///{tmp}/serve-{number}.db"
            with_worker.append(accept_rate("billbot+worker", mine, args.warmup, fresh))
    return bare, billbot, with_worker


def measure_applying(
    args: argparse.Namespace,
    database: str,
    bare_bodies: list[bytes],
    workers: int = 1,
    threads: int = DEFAULT_THREADS,
) -> tuple[list[float], list[float]]:
    """Applying rates, each round followed by a round of the bare endpoint (its rates are
    the second list)."""
    rates, bare = [], []
    label = database if workers == 1 else f"{database}×{workers}"
    if database == "postgres":
        label += f" {threads}t"
    for _ in range(args.rounds):
        with temporary_database(database, postgres_url=args.postgres_url) as url:
            run = measure_apply(url, args.events, workers=workers, threads=threads)
        if run.failed or run.applied != run.events:
            raise SystemExit(f"{label}: {run.failed} events failed; expected all applied")
        print(f"  apply   {label:11} {describe(run)}", flush=True)
        rates.append(run.rate)
        bare.append(accept_rate("bare", bare_bodies, args.warmup, database_url="sqlite://"))
    return rates, bare


Row = tuple[str, list[float], list[float], str]  # label, rates, bare rates beside them, aim


def report(rows: list[Row], rounds: int) -> None:
    print()
    print(f"medians of {rounds} rounds (machine: {os.cpu_count()} CPUs, shared with other work)")
    print(f"{'':40} {'per second':>12} {'bare beside':>12} {'× bare':>8}  aim")
    for label, rates, bare, aim in rows:
        rate, base = statistics.median(rates), statistics.median(bare)
        print(f"{label:40} {rate:12,.0f} {base:12,.0f} {rate / base:8.2f}  {aim}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=20_000, help="HTTP requests per round")
    parser.add_argument("--warmup", type=int, default=1_000, help="requests before each timing")
    parser.add_argument("--events", type=int, default=20_000, help="events applied per round")
    parser.add_argument(
        "--postgres-url", default=POSTGRES_URL, help="server for a temporary database"
    )
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument(
        "--serve", choices=["bare", "billbot", "billbot+worker"], help=argparse.SUPPRESS
    )
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--database-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.database_url)
        return
    bare, billbot, with_worker = measure_acceptance(args)
    rows: list[Row] = [
        ("billbot POST /stripe/webhook, accepted", billbot, bare, ">= 0.50"),
        ("  the same, worker applying (make run)", with_worker, bare, ""),
    ]
    bare_bodies = list(encoded(event_stream(args.requests + args.warmup, start=int(time.time()))))
    rows.append(
        ("worker applying, SQLite", *measure_applying(args, "sqlite", bare_bodies), ">= 0.20")
    )
    if not args.skip_postgres:
        postgres = measure_applying(args, "postgres", bare_bodies)
        rows.append(("worker applying, PostgreSQL", *postgres, ">= 0.20"))
        one_thread = measure_applying(args, "postgres", bare_bodies, threads=1)
        rows.append(("  the same worker with 1 thread", *one_thread, ""))
        two = measure_applying(args, "postgres", bare_bodies, workers=2)
        rows.append(("2 worker processes, PostgreSQL", *two, ""))
    report(rows, args.rounds)


if __name__ == "__main__":
    main()

"""Webhook acceptance, side by side: signed Stripe events accepted per second over HTTP by
billbot's POST /stripe/webhook, and by a bare Starlette POST endpoint on the same machine.

    .venv/bin/python bench/ingest.py [--requests 20000] [--rounds 3] [--database-url URL]

Each server runs in its own process under uvicorn (same options for both); the client is a
minimal keep-alive HTTP/1.1 client on 16 connections sending pre-signed events with unique
ids. billbot answers 200 only after each event's row is committed. By default billbot runs
with WORKER_EMBEDDED=false (acceptance alone); `--embedded-worker` measures the `make run`
set-up, where the same process also applies what it accepts. Afterwards the accepted events
are applied with `Worker.drain()` in this process, for the worker's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SECRET = "whsec_bench_secret"
ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def event_body(number: int, created: int) -> bytes:
    customer = {
        "id": f"cus_bench{number:08d}",
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": "usd",
        "default_source": None,
        "delinquent": False,
        "description": None,
        "email": f"customer{number}@example.com",
        "invoice_prefix": f"B{number:07X}",
        "invoice_settings": {"custom_fields": None, "default_payment_method": None, "footer": None},
        "livemode": False,
        "metadata": {},
        "name": f"Customer {number}",
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    event = {
        "id": f"evt_bench{number:010d}",
        "object": "event",
        "api_version": "2026-07-29.dahlia",
        "created": created,
        "data": {"object": customer},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": "customer.created",
    }
    return json.dumps(event, indent=2).encode()


def signed_request(path: str, port: int, body: bytes, now: int) -> bytes:
    mac = hmac.new(SECRET.encode(), f"{now}.".encode() + body, hashlib.sha256).hexdigest()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Stripe-Signature: t={now},v1={mac}\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection(asyncio.Protocol):
    """Send one request, wait for its whole response, send the next."""

    def __init__(
        self, requests: list[bytes], done: asyncio.Future, statuses: dict[int, int]
    ) -> None:
        self.requests, self.done, self.statuses = requests, done, statuses
        self.buffer = b""

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._next()

    def _next(self) -> None:
        if self.requests:
            self.transport.write(self.requests.pop())
        elif not self.done.done():
            self.done.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").lower()
            length = int(head.split("content-length:")[1].split("\r\n")[0])
            if len(self.buffer) < end + 4 + length:
                return
            status = int(head.split(" ", 2)[1])
            self.statuses[status] = self.statuses.get(status, 0) + 1
            self.buffer = self.buffer[end + 4 + length :]
            self._next()


async def load(port: int, requests: list[bytes], connections: int) -> tuple[float, dict[int, int]]:
    loop = asyncio.get_running_loop()
    statuses: dict[int, int] = {}
    shares = [requests[i::connections] for i in range(connections)]
    futures = [loop.create_future() for _ in shares]
    started = time.perf_counter()
    for share, done in zip(shares, futures, strict=True):
        await loop.create_connection(
            lambda s=share, d=done: Connection(s, d, statuses), "127.0.0.1", port
        )
    await asyncio.gather(*futures)
    return time.perf_counter() - started, statuses


def wait_ready(port: int, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"server exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("server did not start")


def run_server(kind: str, port: int, database_url: str, worker: bool) -> None:
    """Child process: serve `kind` until killed."""
    import uvicorn

    if kind == "bare":
        from starlette.applications import Starlette
        from starlette.responses import Response
        from starlette.routing import Route

        async def bare(request):
            await request.body()
            return Response(b'{"received":true}', media_type="application/json")

        app = Starlette(routes=[Route("/stripe/webhook", bare, methods=["POST"])])
    else:
        os.environ.update(
            STRIPE_WEBHOOK_SECRET=SECRET,
            DATABASE_URL=database_url,
            WORKER_EMBEDDED="true" if worker else "false",
            LOG_LEVEL="WARNING",
        )
        from bot.app import create_app
        from bot.settings import Settings
        from storage.db import make_engine
        from storage.migrate import upgrade

        settings = Settings()
        engine = make_engine(settings.database_url)
        upgrade(engine)
        app = create_app(settings, engine=engine)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)


def measure(kind: str, args: argparse.Namespace, database_url: str, offset: int) -> float:
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
    if args.embedded_worker:
        command.append("--embedded-worker")
    process = subprocess.Popen(command, cwd=ROOT)
    try:
        wait_ready(port, process)
        now = int(time.time())
        count = args.requests + args.warmup
        requests = [
            signed_request("/stripe/webhook", port, event_body(offset + i, now), now)
            for i in range(count)
        ]
        asyncio.run(load(port, requests[: args.warmup], args.connections))
        seconds, statuses = asyncio.run(load(port, requests[args.warmup :], args.connections))
    finally:
        process.terminate()
        process.wait(30)
    rate = args.requests / seconds
    print(f"  {kind:8} {rate:8,.0f} req/s  statuses={statuses}", flush=True)
    return rate


def apply_rate(database_url: str) -> tuple[int, float]:
    """Drain what billbot accepted, in this process, with whatever handlers are registered."""
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    from bot.worker import Worker
    from storage.db import make_engine

    engine = make_engine(database_url)
    started = time.perf_counter()
    result = Worker(engine=engine).drain()
    seconds = time.perf_counter() - started
    engine.dispose()
    done = result.applied + result.ignored
    print(
        f"  worker   {done / seconds:8,.0f} events/s  (applied {result.applied}, ignored {result.ignored})"
    )
    return done, done / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument(
        "--rounds", type=int, default=3, help="alternate bare/billbot; medians are reported"
    )
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--database-url", help="default: a fresh SQLite file")
    parser.add_argument(
        "--embedded-worker",
        action="store_true",
        help="billbot applies events while it accepts them",
    )
    parser.add_argument("--serve", choices=["bare", "billbot"], help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        run_server(args.serve, args.port, args.database_url, worker=args.embedded_worker)
        return
    with tempfile.TemporaryDirectory() as tmp:
        database_url = args.database_url or f"sqlite:///{tmp}/bench.db"
        bare, billbot = [], []
        base = int(time.time()) * 1000  # unique ids across runs on a kept database
        for round_number in range(args.rounds):
            print(f"round {round_number + 1}", flush=True)
            bare.append(measure("bare", args, database_url, 0))
            offset = base + round_number * (args.requests + args.warmup)
            billbot.append(measure("billbot", args, database_url, offset))
        _, worker = apply_rate(database_url)
    bare_rate, billbot_rate = statistics.median(bare), statistics.median(billbot)
    print(
        f"acceptance: billbot {billbot_rate:,.0f} req/s, bare Starlette {bare_rate:,.0f} req/s, "
        f"ratio {billbot_rate / bare_rate:.2f} ({args.connections} connections, medians of {args.rounds})"
    )
    print(f"applying:   {worker:,.0f} events/s, ratio to bare {worker / bare_rate:.2f}")


if __name__ == "__main__":
    main()

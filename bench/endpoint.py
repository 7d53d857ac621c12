"""The webhook endpoint's own cost, without HTTP: CPU microseconds per accepted event.

    .venv/bin/python bench/endpoint.py [--requests 8000] [--rounds 3]

`bench/run.py` measures what Stripe sees (HTTP through uvicorn), where the server's HTTP
parsing is a fixed share of every request. This calls the two ASGI apps directly instead,
16 requests in flight on one uvloop, as uvicorn would after parsing: the bare Starlette
endpoint (bench/bare_app.py) and billbot's whole app (signature check, envelope, inbox row
committed to a temporary SQLite file before the answer, `WORKER_EMBEDDED=false`). The
process's CPU time over the timed requests is divided by their number; it includes every
thread of the process (the inbox writer's too). Used to choose between designs of the
request path, where the HTTP figures alone are too noisy on a shared machine.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import hmac
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import uvloop  # noqa: E402

from bench.events import encoded, event_stream  # noqa: E402

SECRET = "whsec_bench_secret"
CONCURRENCY = 16
App = Callable[[dict, Callable[[], Awaitable[dict]], Callable[[dict], Awaitable[None]]], Awaitable]


def _signed(bodies: list[bytes]) -> list[tuple[bytes, bytes]]:
    now = int(time.time())
    signed = []
    for body in bodies:
        mac = hmac.new(SECRET.encode(), b"%d." % now + body, hashlib.sha256).hexdigest()
        signed.append((body, f"t={now},v1={mac}".encode()))
    return signed


async def _post(app: App, body: bytes, signature: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/stripe/webhook",
        "raw_path": b"/stripe/webhook",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"stripe-signature", signature),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    delivered = False
    statuses: list[int] = []

    async def receive() -> dict:
        nonlocal delivered
        if delivered:  # only a disconnect could follow; it never comes here
            await asyncio.Event().wait()
        delivered = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(scope, receive, send)
    return statuses[0]


class _Lifespan:
    """Drives an app's lifespan protocol: start-up before the requests, shutdown after."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.to_app: asyncio.Queue[dict] = asyncio.Queue()
        self.from_app: asyncio.Queue[dict] = asyncio.Queue()

    async def __aenter__(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self.task = asyncio.create_task(self.app(scope, self.to_app.get, self.from_app.put))
        await self._phase("startup")

    async def __aexit__(self, *_exc) -> None:
        await self._phase("shutdown")
        await self.task

    async def _phase(self, name: str) -> None:
        await self.to_app.put({"type": f"lifespan.{name}"})
        message = await self.from_app.get()
        if message["type"] != f"lifespan.{name}.complete":
            raise SystemExit(f"lifespan {name} failed: {message}")


async def _measure(app: App, requests: list[tuple[bytes, bytes]], warmup: int) -> float:
    pending = iter(requests)

    async def client(count: int) -> set[int]:
        return {await _post(app, *next(pending)) for _ in range(count)}

    timed = (len(requests) - warmup) // CONCURRENCY
    async with _Lifespan(app):
        await asyncio.gather(*(client(warmup // CONCURRENCY) for _ in range(CONCURRENCY)))
        started = time.process_time()
        statuses = await asyncio.gather(*(client(timed) for _ in range(CONCURRENCY)))
        cpu = time.process_time() - started
    if set().union(*statuses) != {200}:
        raise SystemExit(f"answered {set().union(*statuses)}; expected only 200")
    return cpu / (timed * CONCURRENCY) * 1e6


@contextlib.contextmanager
def _app(kind: str) -> Iterator[App]:
    if kind == "bare":
        from bench.bare_app import app

        yield app
        return
    from bot.app import create_app
    from bot.settings import Settings
    from storage.db import make_engine
    from storage.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="billbot-bench-") as tmp:
        settings = Settings(
            _env_file=None,
            stripe_webhook_secret=SECRET,
            database_url=f"sqlite:///{tmp}/endpoint.db",
            worker_embedded=False,
            log_level="WARNING",
        )
        engine = make_engine(settings.database_url)
        try:
            upgrade(engine)
            yield create_app(settings, engine=engine)
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=8_000)
    parser.add_argument("--warmup", type=int, default=480)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    per_round = args.requests + args.warmup
    bodies = list(encoded(event_stream(per_round * args.rounds, start=int(time.time()) - 3600)))
    costs: dict[str, list[float]] = {"bare": [], "billbot": []}
    for number in range(args.rounds):
        requests = _signed(bodies[number * per_round : (number + 1) * per_round])
        for kind in costs:
            with _app(kind) as app:
                costs[kind].append(uvloop.run(_measure(app, requests, args.warmup)))
            print(f"  {kind:8} {costs[kind][-1]:6.1f} CPU-µs per request", flush=True)
    for kind, values in costs.items():
        print(f"{kind:8} median {statistics.median(values):6.1f} CPU-µs per request")


if __name__ == "__main__":
    main()

"""A small HTTP/1.1 load generator: N keep-alive connections, pre-built requests.

Python HTTP clients such as httpx cost more per request than the servers we measure, so
this one writes pre-encoded request bytes from an asyncio Protocol on uvloop and parses
only enough of each response to find its end and its status. Run it in its own process so
it never shares the server's event loop.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

try:
    import uvloop
except ImportError:  # pragma: no cover - uvicorn[standard] brings it
    uvloop = None


@dataclass
class LoadResult:
    requests: int
    seconds: float
    statuses: Counter = field(default_factory=Counter)

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


class _Connection(asyncio.Protocol):
    def __init__(self, queue: list[bytes], statuses: Counter, done: asyncio.Future) -> None:
        self.queue, self.statuses, self.done = queue, statuses, done
        self.buffer = b""

    def connection_made(self, transport) -> None:
        self.transport = transport
        self._send_next()

    def _send_next(self) -> None:
        if self.queue:
            self.transport.write(self.queue.pop())
        else:
            self.transport.close()
            if not self.done.done():
                self.done.set_result(None)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            if len(self.buffer) < end + 4 + length:
                return
            self.statuses[int(head[9:12])] += 1
            self.buffer = self.buffer[end + 4 + length :]
            self._send_next()

    def connection_lost(self, exc) -> None:
        if not self.done.done():
            self.done.set_result(None)


def encode_post(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def run_load(host: str, port: int, requests: list[bytes], *, connections: int = 16) -> LoadResult:
    """Send every request once over `connections` keep-alive connections; time the whole run."""
    queue = list(reversed(requests))
    statuses: Counter = Counter()

    async def main() -> float:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        waits = []
        for _ in range(connections):
            done = loop.create_future()
            await loop.create_connection(lambda d=done: _Connection(queue, statuses, d), host, port)
            waits.append(done)
        await asyncio.gather(*waits)
        return time.perf_counter() - started

    seconds = uvloop.run(main()) if uvloop is not None else asyncio.run(main())
    return LoadResult(requests=len(requests), seconds=seconds, statuses=statuses)

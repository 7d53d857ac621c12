"""A loopback stand-in for Stripe's API, served from a thread, for the real stripe client.

It answers the read endpoints billbot uses in Stripe's own shapes: list endpoints
(`/v1/customers`, `/v1/subscriptions`, `/v1/invoices`, `/v1/charges`, `/v1/refunds`,
`/v1/events`) as `{object: "list", data, has_more, url}` newest first with `limit`,
`starting_after` and `created[gte|gt|lte|lt]`; `GET /v1/<resource>/<id>`; Stripe's error JSON
for a wrong key (401), an unknown id (404) and bad parameters (400).

Faults are programmable: a 429 every N requests (with `Retry-After` and
`Stripe-Should-Retry` when asked), and from request K on a 500 or a dropped connection until
`heal()`. Every request is recorded (path, query, status, and the time on the test's clock).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

RESOURCES = ("customers", "subscriptions", "invoices", "charges", "refunds", "events")
OBJECT_NAMES = {
    "customers": "customer",
    "subscriptions": "subscription",
    "invoices": "invoice",
    "charges": "charge",
    "refunds": "refund",
    "events": "event",
}


@dataclass(frozen=True)
class RecordedRequest:
    number: int
    method: str
    path: str
    query: dict[str, str]
    authorization: str | None
    at: float
    status: int = 0

    @property
    def resource(self) -> str:
        return self.path.split("/")[2] if self.path.count("/") >= 2 else ""


@dataclass
class Faults:
    rate_limit_every: int | None = None
    retry_after: str | None = None
    should_retry: str | None = None
    fail_from: int | None = None
    fail_kind: str = "500"  # "500" or "drop"


@dataclass
class StripeStandIn:
    api_key: str = "sk_test_billbot_standin"
    clock: Callable[[], float] = field(default=lambda: 0.0)
    objects: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {r: [] for r in RESOURCES}
    )
    requests: list[RecordedRequest] = field(default_factory=list)
    faults: Faults = field(default_factory=Faults)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    # -- setup -------------------------------------------------------------------------
    def add(self, resource: str, *objs: dict[str, Any]) -> None:
        with self._lock:
            self.objects[resource].extend(objs)

    def replace(self, resource: str, obj: dict[str, Any]) -> None:
        with self._lock:
            items = self.objects[resource]
            self.objects[resource] = [obj if o["id"] == obj["id"] else o for o in items]

    def rate_limit(
        self, *, every: int, retry_after: str | None = None, should_retry: str | None = None
    ) -> None:
        self.faults.rate_limit_every, self.faults.retry_after = every, retry_after
        self.faults.should_retry = should_retry

    def fail(self, *, from_request: int, kind: str = "500") -> None:
        self.faults.fail_from, self.faults.fail_kind = from_request, kind

    def heal(self) -> None:
        self.faults = Faults()

    def start(self) -> StripeStandIn:
        handler = type("Handler", (_Handler,), {"stand_in": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> StripeStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the stand-in first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def served(self, resource: str | None = None) -> list[RecordedRequest]:
        """Requests answered with 200, optionally for one resource."""
        return [
            r
            for r in self.requests
            if r.status == 200 and (resource is None or r.resource == resource)
        ]

    # -- answering ---------------------------------------------------------------------
    def answer(
        self, method: str, target: str, authorization: str | None
    ) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        with self._lock:
            number = len(self.requests) + 1
            request = RecordedRequest(
                number, method, parts.path, query, authorization, self.clock()
            )
            status, headers, body = self._decide(request)
            self.requests.append(_with_status(request, status))
        return status, headers, body

    def _decide(self, request: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        if request.authorization != f"Bearer {self.api_key}":
            return 401, {}, _error("invalid_request_error", "Invalid API Key provided")
        faults = self.faults
        if faults.fail_from is not None and request.number >= faults.fail_from:
            return (
                (0, {}, None)
                if faults.fail_kind == "drop"
                else (500, {}, _error("api_error", "Internal error"))
            )
        if faults.rate_limit_every and request.number % faults.rate_limit_every == 0:
            headers = {}
            if faults.retry_after is not None:
                headers["Retry-After"] = faults.retry_after
            if faults.should_retry is not None:
                headers["Stripe-Should-Retry"] = faults.should_retry
            message = "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits."
            return 429, headers, _error("invalid_request_error", message, code="rate_limit")
        if request.method != "GET":
            return 405, {}, _error("invalid_request_error", "the stand-in only reads")
        return self._read(request)

    def _read(self, request: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        segments = request.path.strip("/").split("/")
        if len(segments) < 2 or segments[0] != "v1" or segments[1] not in RESOURCES:
            return (
                404,
                {},
                _error("invalid_request_error", f"Unrecognized request URL (GET: {request.path})"),
            )
        resource = segments[1]
        if len(segments) == 3:
            found = [o for o in self.objects[resource] if o["id"] == segments[2]]
            if not found:
                message = f"No such {OBJECT_NAMES[resource]}: '{segments[2]}'"
                return 404, {}, _error("invalid_request_error", message, code="resource_missing")
            return 200, {}, found[0]
        return self._list(resource, request)

    def _list(self, resource: str, request: RecordedRequest) -> tuple[int, dict[str, str], Any]:
        query = request.query
        try:
            limit = int(query.get("limit", "10"))
        except ValueError:
            limit = 0
        if not 1 <= limit <= 100:
            return (
                400,
                {},
                _error("invalid_request_error", "limit must be between 1 and 100", param="limit"),
            )
        items = sorted(
            (o for o in self.objects[resource] if _matches(resource, o, query)),
            key=lambda o: (o["created"], o["id"]),
            reverse=True,
        )
        after = query.get("starting_after")
        if after:
            ids = [o["id"] for o in items]
            if after not in ids:
                message = f"No such {OBJECT_NAMES[resource]}: '{after}'"
                return 400, {}, _error("invalid_request_error", message, param="starting_after")
            items = items[ids.index(after) + 1 :]
        body = {
            "object": "list",
            "data": items[:limit],
            "has_more": len(items) > limit,
            "url": f"/v1/{resource}",
        }
        return 200, {}, body


def _matches(resource: str, obj: dict[str, Any], query: dict[str, str]) -> bool:
    created = obj["created"]
    bounds = {
        "gte": created.__ge__,
        "gt": created.__gt__,
        "lte": created.__le__,
        "lt": created.__lt__,
    }
    for op, check in bounds.items():
        value = query.get(f"created[{op}]")
        if value is not None and not check(int(value)):
            return False
    if resource == "subscriptions":
        status = query.get("status")
        if status is None and obj["status"] in ("canceled", "incomplete_expired"):
            return False  # Stripe's default list leaves out ended subscriptions
        if status not in (None, "all") and obj["status"] != status:
            return False
    if "customer" in query and obj.get("customer") != query["customer"]:
        return False
    if resource == "events":
        wanted = [v for k, v in query.items() if k.startswith("types[")] or (
            [query["type"]] if "type" in query else []
        )
        if wanted and not any(_type_matches(obj["type"], pattern) for pattern in wanted):
            return False
    return True


def _type_matches(event_type: str, pattern: str) -> bool:
    return event_type.startswith(pattern[:-1]) if pattern.endswith("*") else event_type == pattern


def _error(
    kind: str, message: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    error: dict[str, Any] = {"type": kind, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return {"error": error}


def _with_status(request: RecordedRequest, status: int) -> RecordedRequest:
    return RecordedRequest(
        request.number,
        request.method,
        request.path,
        request.query,
        request.authorization,
        request.at,
        status,
    )


class _Handler(BaseHTTPRequestHandler):
    stand_in: StripeStandIn
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = (
        True  # headers and body go out in two writes; do not wait between them
    )

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self._respond("GET")

    def do_POST(self) -> None:  # noqa: N802
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._respond("POST")

    def _respond(self, method: str) -> None:
        status, headers, body = self.stand_in.answer(
            method, self.path, self.headers.get("Authorization")
        )
        if status == 0:  # drop the connection without an answer
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Request-Id", "req_standin")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
        return

"""A loopback stand-in for the Slack Web API: a real HTTP server on 127.0.0.1, in a thread.

Point the real `slack_sdk.WebClient(base_url=api.base_url)` at it. Every request is recorded
(method, HTTP status answered, parsed params from the query, form or JSON body), responses
are shaped like Slack's (shared/reference/slack/examples), messages are remembered so
`chat.update` of an unknown ts fails as Slack's does, and failures can be queued per method:
a 429 with `Retry-After`, a 500, or an error such as `channel_not_found`. It also stands in
for `response_url`s (`api.response_url()`): what is posted there is recorded too.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

TEAM_ID = "T0BILLBOT"
BOT_USER = "U0BILLBOT"


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    status: int
    headers: dict[str, str] = field(repr=False)
    response: dict[str, Any] = field(default_factory=dict, repr=False)

    def json_param(self, name: str) -> Any:
        """`blocks`/`view` arrive as JSON text in form posts and as objects in JSON posts."""
        value = self.params.get(name)
        return json.loads(value) if isinstance(value, str) else value


@dataclass
class Failure:
    status: int
    error: str
    retry_after: int | None
    raw_body: str | None


class FakeSlackApi:
    def __init__(self, *, token: str = "xoxb-test-token") -> None:
        self.token = token
        self.calls: list[Call] = []
        self.messages: dict[str, dict[str, dict[str, Any]]] = defaultdict(
            dict
        )  # channel id -> ts -> message
        self.missing_channels: set[str] = set()
        self._failures: dict[str, deque[Failure]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._ts = itertools.count(1)
        # Called with the method's name after each answer is decided, before it is sent.
        self.on_answer: Callable[[str], None] | None = None
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/api/"

    def start(self) -> FakeSlackApi:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeSlackApi:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- programming and inspecting ------------------------------------------------------------

    def fail(
        self,
        method: str,
        *,
        status: int = 200,
        error: str = "internal_error",
        retry_after: int | None = None,
        times: int = 1,
        raw_body: str | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` with this failure instead of success."""
        with self._lock:
            for _ in range(times):
                self._failures[method].append(Failure(status, error, retry_after, raw_body))

    def calls_to(self, method: str, *, ok_only: bool = False) -> list[Call]:
        with self._lock:
            return [
                c for c in self.calls if c.method == method and (not ok_only or c.status == 200)
            ]

    def response_url(self, name: str = "commands") -> str:
        """A `response_url` for a test payload: posts to it are recorded as `response_url` calls."""
        return self.base_url.replace("/api/", f"/hooks/{name}")

    def responses(self) -> list[dict[str, Any]]:
        """The JSON bodies posted to response URLs, in order."""
        return [call.params for call in self.calls_to("response_url")]

    def channel_id(self, channel: str) -> str:
        """Slack answers with ids: `#billing` becomes a stable `C…` id, user ids open a DM."""
        if channel[:1] in ("C", "G", "D") and channel[1:].isalnum() and channel.isupper():
            return channel
        if channel[:1] in ("U", "W"):
            return "D" + channel[1:]
        return "C" + hashlib.sha1(channel.lstrip("#").encode()).hexdigest()[:10].upper()

    # -- the API -----------------------------------------------------------------------------

    def handle(
        self, method: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], str]:
        with self._lock:
            failure = self._failures[method].popleft() if self._failures[method] else None
            status, extra, body = self._answer(method, params, headers, failure)
            try:
                response = json.loads(body)
            except ValueError:
                response = {}
            self.calls.append(
                Call(
                    method=method, params=params, status=status, headers=headers, response=response
                )
            )
        if self.on_answer is not None:
            self.on_answer(method)
        return status, extra, body

    def _answer(
        self, method: str, params: dict[str, Any], headers: dict[str, str], failure: Failure | None
    ) -> tuple[int, dict[str, str], str]:
        if failure is not None:
            extra = (
                {"Retry-After": str(failure.retry_after)} if failure.retry_after is not None else {}
            )
            body = (
                failure.raw_body
                if failure.raw_body is not None
                else json.dumps({"ok": False, "error": failure.error})
            )
            return failure.status, extra, body
        if headers.get("authorization") != f"Bearer {self.token}" and not method.startswith(
            "upload/"
        ):
            return 200, {}, json.dumps({"ok": False, "error": "invalid_auth"})
        handler = getattr(self, "_" + method.replace(".", "_").replace("/", "_"), None)
        if handler is None:
            return 404, {}, json.dumps({"ok": False, "error": "unknown_method"})
        return 200, {}, json.dumps(handler(params))

    def _next_ts(self) -> str:
        return f"1700000000.{next(self._ts):06d}"

    def _chat_postMessage(self, p: dict[str, Any]) -> dict[str, Any]:
        channel = str(p.get("channel") or "")
        if not channel:
            return {"ok": False, "error": "channel_not_found"}
        if channel in self.missing_channels:
            return {"ok": False, "error": "channel_not_found"}
        if not p.get("text") and not p.get("blocks"):
            return {"ok": False, "error": "no_text"}
        cid, ts = self.channel_id(channel), self._next_ts()
        message = {
            "type": "message",
            "subtype": "bot_message",
            "bot_id": "B0BILLBOT",
            "text": p.get("text", ""),
            "ts": ts,
            "blocks": p.get("blocks") or [],
        }
        if p.get("thread_ts"):
            if p["thread_ts"] not in self.messages[cid]:
                return {"ok": False, "error": "thread_not_found"}
            message["thread_ts"] = p["thread_ts"]
        self.messages[cid][ts] = message
        return {"ok": True, "channel": cid, "ts": ts, "message": message}

    def _chat_update(self, p: dict[str, Any]) -> dict[str, Any]:
        cid, ts = str(p.get("channel") or ""), str(p.get("ts") or "")
        if ts not in self.messages.get(cid, {}):
            return {"ok": False, "error": "message_not_found"}
        self.messages[cid][ts].update(text=p.get("text", ""), blocks=p.get("blocks") or [])
        return {
            "ok": True,
            "channel": cid,
            "ts": ts,
            "text": p.get("text", ""),
            "message": self.messages[cid][ts],
        }

    def _chat_postEphemeral(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("channel") or not p.get("user"):
            return {"ok": False, "error": "user_not_in_channel"}
        return {"ok": True, "message_ts": self._next_ts()}

    def _views_open(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("trigger_id"):
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": ["invalid `trigger_id`"]},
            }
        return {"ok": True, "view": self._view(p)}

    def _views_update(self, p: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "view": self._view(p)}

    def _views_publish(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("user_id"):
            return {
                "ok": False,
                "error": "invalid_arguments",
                "response_metadata": {"messages": ["invalid `user_id`"]},
            }
        return {"ok": True, "view": self._view(p)}

    def _view(self, p: dict[str, Any]) -> dict[str, Any]:
        view = p.get("view")
        view = json.loads(view) if isinstance(view, str) else dict(view or {})
        return {
            **view,
            "id": p.get("view_id") or f"V{next(self._ts):08d}",
            "team_id": TEAM_ID,
            "app_id": "A0BILLBOT",
            "bot_id": "B0BILLBOT",
            "hash": "1700000000.abcdef",
            "state": {"values": {}},
        }

    def _users_info(self, p: dict[str, Any]) -> dict[str, Any]:
        user = str(p.get("user") or "")
        if not user.startswith(("U", "W")):
            return {"ok": False, "error": "user_not_found"}
        name = f"user-{user.lower()}"
        return {
            "ok": True,
            "user": {
                "id": user,
                "team_id": TEAM_ID,
                "name": name,
                "real_name": name,
                "deleted": False,
                "is_bot": False,
                "tz": "Europe/Berlin",
                "tz_offset": 3600,
                "profile": {"display_name": name, "real_name": name},
            },
        }

    def _conversations_open(self, p: dict[str, Any]) -> dict[str, Any]:
        users = str(p.get("users") or "")
        if not users:
            return {"ok": False, "error": "users_not_found"}
        return {"ok": True, "channel": {"id": self.channel_id(users.split(",")[0])}}

    def _auth_test(self, p: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": "https://billbot-test.slack.com/",
            "team": "billbot test",
            "user": "billbot",
            "team_id": TEAM_ID,
            "user_id": BOT_USER,
            "bot_id": "B0BILLBOT",
            "is_enterprise_install": False,
        }

    def _files_getUploadURLExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        if not p.get("filename") or not p.get("length"):
            return {"ok": False, "error": "invalid_arguments"}
        file_id = f"F{next(self._ts):08d}"
        return {
            "ok": True,
            "upload_url": self.base_url.replace("/api/", f"/api/upload/{file_id}"),
            "file_id": file_id,
        }

    def _files_completeUploadExternal(self, p: dict[str, Any]) -> dict[str, Any]:
        files = p.get("files")
        files = json.loads(files) if isinstance(files, str) else files
        if not files:
            return {"ok": False, "error": "invalid_arguments"}
        return {"ok": True, "files": [{"id": f["id"], "title": f.get("title", "")} for f in files]}


def _handler_for(api: FakeSlackApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            self._serve()

        def do_POST(self) -> None:  # noqa: N802
            self._serve()

        def _serve(self) -> None:
            url = urlsplit(self.path)
            method = url.path.removeprefix("/api/")
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            params: dict[str, Any] = dict(parse_qsl(url.query))
            if url.path.startswith("/hooks/"):
                params.update(json.loads(raw) if raw else {})
                status, extra, body = 200, {}, "ok"
                with api._lock:
                    api.calls.append(
                        Call(method="response_url", params=params, status=200, headers={})
                    )
            elif method.startswith("upload/"):
                params["bytes"] = len(raw)
                status, extra, body = 200, {}, "OK - uploaded"
                with api._lock:
                    api.calls.append(Call(method="upload", params=params, status=200, headers={}))
            else:
                content_type = self.headers.get("Content-Type", "")
                if raw and "json" in content_type:
                    params.update(json.loads(raw))
                elif raw:
                    params.update(parse_qsl(raw.decode()))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status, extra, body = api.handle(method, params, headers)
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

    return Handler

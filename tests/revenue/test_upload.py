"""The chart upload flow against a loopback stand-in for Slack, with the real WebClient."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from handlers.revenue.upload import ChartUploadError, upload_chart

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


class StandIn(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SlackHandler)
        self.requests: list[tuple[str, dict[str, str], bytes]] = []
        self.upload_status = 200
        self.get_url_error: str | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class SlackHandler(BaseHTTPRequestHandler):
    server: StandIn

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.requests.append((self.path, dict(self.headers), body))
        if self.path == "/api/files.getUploadURLExternal":
            if self.server.get_url_error:
                return self._json({"ok": False, "error": self.server.get_url_error})
            return self._json(
                {"ok": True, "upload_url": f"{self.server.base}/upload/F123", "file_id": "F123"}
            )
        if self.path == "/upload/F123":
            self.send_response(self.server.upload_status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"OK")
            return None
        if self.path == "/api/files.completeUploadExternal":
            return self._json({"ok": True, "files": [{"id": "F123", "title": "MRR"}]})
        return self._json({"ok": False, "error": "unknown_method"})

    def _json(self, data: dict) -> None:
        payload = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def slack() -> Iterator[StandIn]:
    server = StandIn()
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def client_for(slack: StandIn) -> WebClient:
    return WebClient(token="xoxb-test", base_url=f"{slack.base}/api/", timeout=5)


def form(body: bytes) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(body.decode()).items()}


def test_upload_flow_in_order_with_alt_text_and_thread(slack):
    file_id = upload_chart(
        client_for(slack),
        channel="C42",
        png=PNG,
        title="MRR, last 12 months",
        alt_text="MRR rose",
        thread_ts="1.2",
    )
    assert file_id == "F123"
    paths = [path for path, _, _ in slack.requests]
    assert paths == [
        "/api/files.getUploadURLExternal",
        "/upload/F123",
        "/api/files.completeUploadExternal",
    ]
    ticket = form(slack.requests[0][2])
    assert ticket == {"filename": "mrr.png", "length": str(len(PNG)), "alt_txt": "MRR rose"}
    assert slack.requests[0][1]["Authorization"] == "Bearer xoxb-test"
    assert slack.requests[1][2] == PNG
    complete = form(slack.requests[2][2])
    assert complete["channel_id"] == "C42" and complete["thread_ts"] == "1.2"
    assert json.loads(complete["files"]) == [{"id": "F123", "title": "MRR, last 12 months"}]


def test_failed_byte_upload_never_completes(slack):
    slack.upload_status = 500
    with pytest.raises(ChartUploadError, match="HTTP 500"):
        upload_chart(client_for(slack), channel="C42", png=PNG, title="MRR", alt_text="x" * 2000)
    assert [path for path, _, _ in slack.requests] == [
        "/api/files.getUploadURLExternal",
        "/upload/F123",
    ]
    assert len(form(slack.requests[0][2])["alt_txt"]) == 1000


def test_slack_errors_surface(slack):
    slack.get_url_error = "file_uploads_disabled"
    with pytest.raises(SlackApiError):
        upload_chart(client_for(slack), channel="C42", png=PNG, title="MRR", alt_text="MRR")
    assert len(slack.requests) == 1

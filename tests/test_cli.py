"""The `billbot` commands: migrate, events (and retry), replay in its three formats, worker,
and `serve` started for real in a subprocess with the default settings."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import inspect

from bot.cli import main
from storage.db import make_engine
from storage.models.inbox import EventStatus
from tests import ingest_events as factory
from tests.ingest_support import (
    applications,
    failing_handler,
    inbox_row,
    inbox_rows,
    recording_handler,
    registered,
)

BILLBOT = Path(sys.executable).with_name("billbot")


@pytest.fixture
def cli(monkeypatch, tmp_path):
    """Run `billbot ARGS` in-process against `url`, from an empty directory (no `.env`)."""
    monkeypatch.chdir(tmp_path)

    def run(url: str, *args: str) -> int:
        monkeypatch.setenv("DATABASE_URL", url)
        return main(list(args))

    return run


def url_of(engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_migrate_creates_the_schema_and_explains_a_bad_database(cli, tmp_path, caplog):
    url = f"sqlite:///{tmp_path}/fresh.db"
    assert cli(url, "migrate") == 0
    engine = make_engine(url)
    assert inspect(engine).has_table("stripe_event")
    engine.dispose()
    assert cli(f"sqlite:///{tmp_path}/missing/dir/x.db", "migrate") == 1
    assert any("db.migrate_failed" in r.getMessage() for r in caplog.records)


def test_events_lists_failed_ones_and_retry_requeues(cli, engine, capsys):
    good, bad = factory.event(factory.TEST_TYPE), factory.event(factory.FAILING_TYPE)
    (Path.cwd() / "events.jsonl").write_text("\n".join(json.dumps(v) for v in (good, bad)) + "\n")
    with (
        registered(factory.TEST_TYPE, recording_handler),
        registered(factory.FAILING_TYPE, failing_handler),
    ):
        assert cli(url_of(engine), "replay", "events.jsonl") == 0
    capsys.readouterr()

    assert cli(url_of(engine), "events", "--failed") == 0
    listed = capsys.readouterr().out
    assert bad["id"] in listed and good["id"] not in listed
    assert "attempts=1" in listed and "cannot apply" in listed

    assert cli(url_of(engine), "events", "--limit", "5") == 0
    everything = capsys.readouterr().out
    assert good["id"] in everything and bad["id"] in everything
    assert "inbox: applied 1, pending 1" in everything

    assert cli(url_of(engine), "events", "retry", bad["id"]) == 0
    row = inbox_row(engine, bad["id"])
    assert (row.status, row.attempts, row.next_attempt_at, row.last_error) == (
        EventStatus.PENDING,
        0,
        None,
        None,
    )

    assert cli(url_of(engine), "events", "retry", "evt_no_such_event") == 1
    assert "no event 'evt_no_such_event'" in capsys.readouterr().out
    assert cli(url_of(engine), "events", "retry", good["id"]) == 1
    assert "already applied" in capsys.readouterr().out


def _exports(directory: Path) -> tuple[list[Path], list[str]]:
    array = [factory.event(factory.TEST_TYPE) for _ in range(3)]
    lines = [factory.event(factory.TEST_TYPE) for _ in range(3)]
    page = [factory.event(factory.TEST_TYPE) for _ in range(3)]
    files = [directory / "array.json", directory / "events.jsonl", directory / "page.json"]
    files[0].write_text(
        json.dumps([array[0], {"id": "cus_1", "object": "customer"}, *array[1:]], indent=2)
    )
    jsonl = [json.dumps(lines[0]), "", json.dumps(lines[1]), "{garbage", json.dumps(lines[2])]
    files[1].write_text("\n".join(jsonl) + "\n")
    files[2].write_text(
        json.dumps({"object": "list", "data": page, "has_more": False, "url": "/v1/events"})
    )
    return files, [v["id"] for v in array + lines + page]


def test_replay_reads_all_three_formats_applies_once_and_is_idempotent(
    cli, engine, capsys, tmp_path
):
    files, ids = _exports(tmp_path)
    with registered(factory.TEST_TYPE, recording_handler):
        assert cli(url_of(engine), "replay", *map(str, files)) == 1  # two invalid entries
        first = capsys.readouterr().out
        assert cli(url_of(engine), "replay", *map(str, files)) == 1
        second = capsys.readouterr().out
    assert "array.json: 3 new, 0 duplicate, 1 invalid" in first
    assert "index 1: body is not a Stripe event" in first
    assert "events.jsonl: 3 new, 0 duplicate, 1 invalid" in first
    assert "line 4: not valid JSON" in first
    assert "page.json: 3 new, 0 duplicate, 0 invalid" in first
    assert "applied 9" in first
    assert "page.json: 0 new, 3 duplicate, 0 invalid" in second
    assert applications(engine) == {event_id: 1 for event_id in ids}
    assert {row.source for row in inbox_rows(engine)} == {"replay"}


def test_replay_no_apply_leaves_events_for_the_worker(cli, sqlite_engine, capsys, tmp_path):
    path = tmp_path / "one.jsonl"
    value = factory.event(factory.TEST_TYPE)
    path.write_text(json.dumps(value) + "\n")
    assert cli(url_of(sqlite_engine), "replay", "--no-apply", str(path)) == 0
    assert inbox_row(sqlite_engine, value["id"]).status == EventStatus.PENDING
    with registered(factory.TEST_TYPE, recording_handler):
        assert cli(url_of(sqlite_engine), "worker", "--drain") == 0
    assert "applied 1" in capsys.readouterr().out
    assert inbox_row(sqlite_engine, value["id"]).status == EventStatus.APPLIED


def test_replay_shows_progress_on_long_files_and_refuses_unreadable_ones(
    cli, sqlite_engine, capsys, tmp_path
):
    path = tmp_path / "long.jsonl"
    path.write_text(
        "".join(json.dumps(factory.event(factory.UNKNOWN_TYPE)) + "\n" for _ in range(5001))
    )
    assert cli(url_of(sqlite_engine), "replay", "--no-apply", str(path)) == 0
    captured = capsys.readouterr()
    assert "long.jsonl: 5000 read" in captured.err
    assert "5001 new" in captured.out
    broken = tmp_path / "broken.json"
    broken.write_text("[{")
    assert cli(url_of(sqlite_engine), "replay", "--no-apply", str(broken)) == 1
    assert "cannot replay" in capsys.readouterr().err
    assert cli(url_of(sqlite_engine), "replay", "--no-apply", str(tmp_path / "absent.json")) == 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _clean_env() -> dict[str, str]:
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
    return {key: os.environ[key] for key in keep if key in os.environ}


def test_serve_starts_with_default_settings_answers_healthz_and_stops_cleanly(tmp_path):
    port = _free_port()
    process = subprocess.Popen(
        [str(BILLBOT), "serve", "--port", str(port)],
        cwd=tmp_path,
        env=_clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = _wait_for_health(port, process)
        webhook = httpx.post(f"http://127.0.0.1:{port}/stripe/webhook", content=b"{}", timeout=5)
    finally:
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    assert health is not None and health.status_code == 200, stderr
    assert health.json() == {"status": "ok"}
    assert webhook.status_code == 503  # no STRIPE_WEBHOOK_SECRET in a fresh set-up
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr
    assert stderr.count("slack.console_mode") == 1
    assert (tmp_path / "billbot.db").exists()


def _wait_for_health(port: int, process: subprocess.Popen) -> httpx.Response | None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
        except httpx.TransportError:
            time.sleep(0.05)
    return None

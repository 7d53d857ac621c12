"""`billbot jobs` and `billbot run-job NAME`, in-process, with the clock set by time-machine."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine

from bot.cli import main
from storage.db import make_engine
from tests.jobs.conftest import NOW, add_trial, outbox


@pytest.fixture
def cli(monkeypatch, tmp_path, database_url):
    """Run `billbot ARGS` against the test database, from an empty directory (no `.env`)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BILLBOT_TIMEZONE", "Europe/Berlin")
    monkeypatch.setenv("SLACK_CHANNEL_TRIAL", "#trials")
    monkeypatch.delenv("STRIPE_API_KEY", raising=False)

    def run(*args: str) -> int:
        return main(list(args))

    return run


def test_jobs_lists_every_job_with_its_next_local_run(cli, capsys):
    with time_machine.travel(NOW + timedelta(hours=1), tick=False):  # Friday 10:00 in Berlin
        assert cli("jobs") == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()[1:]}
    assert "next Sat 2026-03-28 09:00 CET" in lines["trial-reminders"]
    assert "next Sat 2026-03-28 09:00 CET" in lines["task-nudges"]
    assert "next Mon 2026-03-30 09:00 CEST" in lines["digest"]  # after the DST change
    assert "next Fri 2026-03-27 10:05 CET" in lines["housekeeping"]
    assert "next not scheduled" in lines["reconcile"]
    assert "last never" in lines["digest"]


def test_run_job_runs_once_and_says_what_it_did(cli, capsys, database_url):
    engine = make_engine(database_url)
    add_trial(engine, 1, ends=NOW + timedelta(days=1))
    with time_machine.travel(NOW, tick=False):
        assert cli("run-job", "trial-reminders") == 0
        first = capsys.readouterr().out
        assert cli("run-job", "trial-reminders") == 0
        second = capsys.readouterr().out
        assert cli("jobs") == 0
        listing = capsys.readouterr().out
    assert first.splitlines()[:2] == [
        "trial-reminders: done",
        "  posted: trial reminder to #trials listing 1 trial (sub_t1)",
    ]
    assert second.splitlines() == [
        "trial-reminders: done",
        "  skipped: 1 trial already reminded about",
    ]
    assert "last Fri 2026-03-27 09:00 CET" in listing
    assert len(outbox(engine)) == 1
    engine.dispose()


def test_run_job_refuses_an_unknown_name(cli, capsys):
    with pytest.raises(SystemExit) as exit:
        cli("run-job", "backups")
    assert exit.value.code == 2
    assert "invalid choice: 'backups'" in capsys.readouterr().err


def test_run_job_reconcile_without_a_key_says_so(cli, capsys):
    assert cli("run-job", "reconcile") == 0
    assert "STRIPE_API_KEY is not set" in capsys.readouterr().out

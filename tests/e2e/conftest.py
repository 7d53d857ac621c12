"""Fixtures for the end-to-end tests: the `billbot` command line, run in-process."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from bot.cli import main


@pytest.fixture
def billbot(monkeypatch, tmp_path, capsys) -> Callable[..., tuple[int, str, str]]:
    """`billbot ARGS` as a user types it: settings from the environment (given as keyword
    arguments, e.g. DATABASE_URL=...), from an empty directory (no `.env`)."""
    monkeypatch.chdir(tmp_path)

    def run(*argv: str, **env: str) -> tuple[int, str, str]:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        capsys.readouterr()
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def billbot_json(billbot) -> Callable[..., dict]:
    """`billbot ... --json`, parsed; fails the test when the command does."""

    def run(*argv: str, **env: str) -> dict:
        code, out, err = billbot(*argv, "--json", **env)
        assert code == 0, err
        return json.loads(out)

    return run

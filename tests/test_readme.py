"""The README tells the truth about configuration and commands."""

import re
from pathlib import Path

from bot.cli import build_parser
from bot.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_every_setting_is_in_the_configuration_table_and_nothing_else():
    rows = re.findall(r"^\| `([A-Z_0-9]+)` \|", section("Configuration"), re.M)
    assert len(rows) == len(set(rows)), "a setting is listed twice"
    assert sorted(rows) == sorted(name.upper() for name in Settings.model_fields)


def test_every_subcommand_is_in_the_commands_table():
    parser = build_parser()
    [subparsers] = [a for a in parser._actions if a.dest == "command"]
    listed = set(re.findall(r"^\| `billbot ([a-z-]+)", section("Commands"), re.M))
    assert listed == set(subparsers.choices)


def test_quick_start_is_make_run_and_make_test():
    assert "```sh\nmake run\nmake test\n```" in section("Quick start")

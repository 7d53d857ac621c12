"""`billbot`: one console script, one subcommand per module in `bot/commands/`.

Each command module defines `register(subparsers)`, which adds its parser and sets
`handler=fn(args, settings) -> int`. Settings are read once, here.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from pydantic import ValidationError

from bot.logs import configure_logging
from bot.settings import Settings

COMMAND_MODULES = (
    # Each module registers one or more subcommands; keep the list sorted.
    "bot.commands.backfill",
    "bot.commands.events",
    "bot.commands.import_csv",
    "bot.commands.jobs",
    "bot.commands.lookup",
    "bot.commands.migrate",
    "bot.commands.outbox",
    "bot.commands.reconcile",
    "bot.commands.replay",
    "bot.commands.revenue",
    "bot.commands.scheduler",
    "bot.commands.serve",
    "bot.commands.worker",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="billbot", description=__doc__.splitlines()[0])
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        lines = ["billbot: the configuration is not valid:"]
        for error in exc.errors():
            variable = "_".join(str(part) for part in error["loc"]).upper()
            lines.append(f"  {variable}: {error['msg']}")
        raise SystemExit("\n".join(lines)) from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = load_settings()
    configure_logging(settings.log_level)
    return int(args.handler(args, settings) or 0)


if __name__ == "__main__":
    sys.exit(main())

"""One log format for every billbot process: events with their ids.

Code logs an event name and its ids as `extra` (`logger.info("alerts.opened",
extra={"alert_id": 7})`); the standard formatter drops extras, so an operator would read
"alerts.opened" and never learn which alert. `EventFormatter` appends them as `key=value`.
Extras carry ids and counts only (never customer data or secrets), by the project's rule.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}


class EventFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = [
            f"{key}={value}"
            for key, value in record.__dict__.items()
            if key not in _STANDARD and not key.startswith("_")
        ]
        if not extras:
            return text
        head, newline, rest = text.partition("\n")  # keep tracebacks and printed messages below
        return f"{head} {' '.join(extras)}{newline}{rest}"


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EventFormatter(FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])

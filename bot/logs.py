"""Logs are events: `logger.info("stripe.event.applied", extra={"event_id": ...})`.

The formatter prints the event name and then every `extra` field as `key=value`, so ids
reach the log without string formatting at each call site. Only ids and counts go in
`extra`: never customer data, request bodies or secrets.
"""

from __future__ import annotations

import logging
import sys

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None)).keys()) | {
    "message",
    "asctime",
    "color_message",  # uvicorn's coloured copy of the message
    "taskName",
}


class EventFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD and not key.startswith("_")
        ]
        if not fields:
            return line
        head, newline, rest = line.partition("\n")  # keep tracebacks below the fields
        return f"{head} {' '.join(fields)}{newline}{rest}"


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EventFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.billbot = True  # type: ignore[attr-defined]
    root = logging.getLogger()
    # Replace our own earlier handler, keep anyone else's (pytest's log capture, say).
    root.handlers[:] = [h for h in root.handlers if not getattr(h, "billbot", False)] + [handler]
    root.setLevel(level.upper())
    # APScheduler narrates every job it adds and runs at INFO; billbot logs its own job events
    # (`job.finished job=digest ...`), so keep the library's chatter for DEBUG.
    if root.level > logging.DEBUG:
        logging.getLogger("apscheduler").setLevel(logging.WARNING)

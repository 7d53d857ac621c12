"""Apply events the way the worker will: parse the JSON body, look up the handler, run it
in one unit of work per event."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine

from handlers.stripe.events import parse_event
from handlers.stripe.registry import Change, handler_for
from storage.db import session_scope


@pytest.fixture
def apply(engine: Engine) -> Callable[..., list[Change]]:
    def run(*events: dict[str, Any]) -> list[Change]:
        changes: list[Change] = []
        for raw in events:
            event = parse_event(json.dumps(raw).encode())
            handler = handler_for(event.type)
            assert handler is not None, f"no handler for {event.type}"
            with session_scope(engine) as session:
                changes += handler(session, event)
        return changes

    return run

"""What listeners need, handed to each listener module's `register(app, deps)` once."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import Engine

from bot.settings import Settings
from storage.types import utcnow


@dataclass(frozen=True, slots=True)
class SlackDeps:
    settings: Settings
    engine: Engine
    clock: Callable[[], datetime] = field(default=utcnow)

    def today(self) -> date:
        """Today where the team is (`BILLBOT_TIMEZONE`): due dates are counted from it."""
        return self.clock().astimezone(self.settings.timezone).date()

"""Fixtures for the scheduled jobs: settings that ignore the environment, store rows, outbox reads."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlmodel import select

from bot.settings import Settings
from storage.db import read_scope, session_scope
from storage.models import JobRun, OutboxMessage, PostedItem, Task
from tests.fakes.slack_api import FakeSlackApi
from tests.slack.factories import add_customer, add_subscription

BOT_TOKEN = "xoxb-test-token"
NOW = datetime(2026, 3, 27, 8, 0, tzinfo=UTC)  # a Friday, 09:00 in Berlin (CET)


def job_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "slack_alert_channel": "#billing-alerts",
        "slack_channel_trial": "#trials",
        "slack_channel_digest": "#revenue",
        "billbot_timezone": "Europe/Berlin",
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings() -> Settings:
    return job_settings()


@pytest.fixture
def slack_api() -> Iterator[FakeSlackApi]:
    with FakeSlackApi(token=BOT_TOKEN) as api:
        yield api


def add_trial(
    engine: Engine,
    n: int,
    *,
    ends: datetime,
    name: str | None = None,
    has_payment_method: bool | None = True,
    items: list[dict[str, Any]] | None = None,
) -> str:
    """A customer `cus_tN` with a trialing subscription `sub_tN` ending at `ends`."""
    with session_scope(engine) as session:
        add_customer(
            session,
            id=f"cus_t{n}",
            name=name or f"Trial Customer {n}",
            email=f"t{n}@example.test",
            has_payment_method=has_payment_method,
        )
        add_subscription(
            session,
            id=f"sub_t{n}",
            customer_id=f"cus_t{n}",
            status="trialing",
            trial_end=ends,
            items=items if items is not None else [{"plan_name": "Pro", "unit_amount": 4900}],
        )
    return f"sub_t{n}"


def move_trial(engine: Engine, subscription_id: str, *, ends: datetime) -> None:
    with session_scope(engine) as session:
        from storage.models import Subscription

        row = session.get(Subscription, subscription_id)
        row.trial_end = ends
        session.add(row)


def add_task(
    engine: Engine,
    *,
    assignee: str,
    due: date | None,
    title: str = "Call them",
    customer_id: str | None = None,
) -> int:
    from storage.tasks import create_task

    with session_scope(engine) as session:
        task = create_task(
            session=session,
            customer_id=customer_id,
            alert_id=None,
            title=title,
            note=None,
            assignee=assignee,
            creator="U0CREATOR",
            due_date=due,
            now=NOW - timedelta(days=3),
        )
        return task.id


def rows(engine: Engine, model: type) -> list[Any]:
    with read_scope(engine) as session:
        found = list(session.exec(select(model).order_by(model.id)))
        session.expunge_all()
        return found


def outbox(engine: Engine, kind: str | None = None) -> list[OutboxMessage]:
    return [m for m in rows(engine, OutboxMessage) if kind is None or m.kind == kind]


__all__ = ["JobRun", "PostedItem", "Task", "add_task", "outbox", "rows"]

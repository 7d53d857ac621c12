"""Several rows inserted at once (`storage/insert_once.py`: a JSON rows parameter on
PostgreSQL, a multi-row statement or `executemany` on SQLite) store exactly what inserting
them one at a time stores: the same values (JSON, timestamps to the microsecond, NULLs), the
same ids in the same order, and the same rows left out on a conflict, with an existing row or
with an earlier row of the same call."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, Table, select
from sqlmodel import Session

from storage.insert_once import (
    insert_many_ignoring_conflict,
    insert_many_returning_keys,
    insert_values_ignoring_conflict,
)
from storage.models import Alert, OutboxMessage
from storage.models.outbox import Operation
from tests.slack.test_alerts_in_one_batch import wipe

MOMENT = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)
ELSEWHERE = timezone(timedelta(hours=-5))


def alert(key: str, **values: Any) -> dict[str, Any]:
    return {
        "incident_key": key,
        "kind": "payment_failed",
        "customer_id": "cus_1",
        "subject_id": f"in_{key}",
        "livemode": False,
        "channel": "#alerts",
        "facts": {"customer_name": 'Ann "A" O\'Neil ✓', "amount": 1500, "nested": {"a": [1, None]}},
        "event_id": "evt_1",
        "last_event_id": "evt_1",
        "created_at": MOMENT,
        "updated_at": MOMENT,
        **values,
    }


def message(key: str, **values: Any) -> dict[str, Any]:
    return {
        "dedupe_key": key,
        "channel": "#alerts",
        "operation": Operation.POST,
        "kind": "refund",
        "payload": {"text": "a\nb \\ c", "blocks": [{"type": "section", "text": "“x”"}]},
        "alert_id": 7,
        "created_at": MOMENT,
        **values,
    }


ALERTS = [
    alert("k2", customer_id=None, livemode=True),
    alert("k1", kind="refund"),  # stored before: left out
    alert("k3", created_at=MOMENT.astimezone(ELSEWHERE), facts={}),
    alert("k2", channel="#other"),  # an earlier row of this call has the key: left out
    alert("k4", updated_at=MOMENT.replace(microsecond=0)),
]
MESSAGES = [
    message("m2", alert_id=None),
    message("m1", kind="other"),
    message("m3", operation=Operation.UPDATE, payload={}),
    message("m2", channel="#other"),
    message("m4", created_at=MOMENT.astimezone(ELSEWHERE)),
]


def stored(engine: Engine, table: Table) -> list[tuple]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(select(table).order_by(table.c.id))]


def one_at_a_time(engine: Engine, table: Table, rows: list[dict], key: str) -> dict[str, int]:
    with Session(engine) as session:
        ids = {}
        for row in rows:
            new_id = insert_values_ignoring_conflict(
                session=session, table=table, values=row, conflict_on=key
            )
            if new_id is not None:
                ids[row[key]] = new_id
        session.commit()
    return ids


def test_alerts_at_once_are_stored_as_one_at_a_time(engine):
    table = Alert.__table__
    one_at_a_time(engine, table, [alert("k1")], "incident_key")
    expected_ids = one_at_a_time(engine, table, ALERTS, "incident_key")
    expected = stored(engine, table)
    wipe(engine)

    one_at_a_time(engine, table, [alert("k1")], "incident_key")
    with Session(engine) as session:
        ids = insert_many_returning_keys(
            session=session, table=table, rows=ALERTS, conflict_on="incident_key"
        )
        session.commit()
    assert ids == expected_ids
    assert list(ids) == ["k2", "k3", "k4"] and sorted(ids.values()) == list(ids.values())
    assert stored(engine, table) == expected


def test_messages_at_once_are_stored_as_one_at_a_time(engine):
    table = OutboxMessage.__table__
    one_at_a_time(engine, table, [message("m1")], "dedupe_key")
    one_at_a_time(engine, table, MESSAGES, "dedupe_key")
    expected = stored(engine, table)
    wipe(engine)

    one_at_a_time(engine, table, [message("m1")], "dedupe_key")
    with Session(engine) as session:
        insert_many_ignoring_conflict(
            session=session, table=table, rows=MESSAGES, conflict_on="dedupe_key"
        )
        session.commit()
    assert stored(engine, table) == expected
    assert [row[1] for row in expected] == ["m1", "m2", "m3", "m4"]


def test_a_naive_timestamp_is_refused_at_once_too(engine):
    naive = [alert("k1"), alert("k2", created_at=MOMENT.replace(tzinfo=None))]
    with Session(engine) as session, pytest.raises(Exception, match="naive datetime"):
        insert_many_returning_keys(
            session=session, table=Alert.__table__, rows=naive, conflict_on="incident_key"
        )

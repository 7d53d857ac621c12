"""storage/insert_once.py's multi-row inserts, run as the driver's executemany
(storage/raw_inserts.py), store what SQLAlchemy's own statement stores and answer the same."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from storage.insert_once import (
    _statement,
    insert_many_ignoring_conflict,
    insert_many_returning_keys,
)
from storage.models import Alert
from storage.models.outbox import OutboxMessage

ALERTS = Alert.__table__  # type: ignore[attr-defined]
OUTBOX = OutboxMessage.__table__  # type: ignore[attr-defined]
VOLATILE = {"id", "incident_key", "created_at", "updated_at"}


def _alert(key: str) -> dict[str, Any]:
    """The columns `storage.alerts.open_alert` gives; the others take their defaults."""
    return {
        "incident_key": key,
        "kind": "payment_failed",
        "customer_id": "cus_1",
        "subject_id": "in_1",
        "livemode": False,
        "channel": "#billing",
        "facts": {"amount": 1000, "note": None, "lines": [1, 2]},
        "event_id": "evt_1",
        "last_event_id": "evt_1",
    }


def _stored_alerts(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(select(ALERTS).order_by(ALERTS.c.id)).mappings().all()
    return {row["incident_key"]: dict(row) for row in rows}


@pytest.mark.parametrize("count", [1, 3])
def test_alerts_inserted_together_are_stored_as_sqlalchemy_stores_them(
    engine: Engine, count: int
) -> None:
    with Session(engine) as session:
        theirs = [_alert(f"theirs:{n}") for n in range(count)]
        sqlalchemy = _statement(ALERTS, "incident_key", engine.dialect.name, returning_key=True)
        expected = {key: new_id for new_id, key in session.connection().execute(sqlalchemy, theirs)}
        ours = insert_many_returning_keys(
            session=session,
            table=ALERTS,
            rows=[_alert(f"ours:{n}") for n in range(count)],
            conflict_on="incident_key",
        )
        session.commit()
    assert list(expected.values()) == list(range(1, count + 1))
    assert ours == {f"ours:{n}": count + 1 + n for n in range(count)}
    stored = _stored_alerts(engine)
    for n in range(count):
        mine, reference = stored[f"ours:{n}"], stored[f"theirs:{n}"]
        assert {k: v for k, v in mine.items() if k not in VOLATILE} == {
            k: v for k, v in reference.items() if k not in VOLATILE
        }
        assert mine["created_at"] is not None and mine["updated_at"] is not None


def test_alerts_whose_incident_exists_are_left_out_of_the_answer(engine: Engine) -> None:
    with Session(engine) as session:
        first = insert_many_returning_keys(
            session=session,
            table=ALERTS,
            rows=[_alert("a"), _alert("b")],
            conflict_on="incident_key",
        )
        again = insert_many_returning_keys(
            session=session,
            table=ALERTS,
            rows=[_alert("b"), _alert("c"), _alert("a")],
            conflict_on="incident_key",
        )
        session.commit()
    assert first == {"a": 1, "b": 2}
    # A row left out still takes a number from the sequence on PostgreSQL, as it did.
    assert set(again) == {"c"} and again["c"] > 2
    assert sorted(_stored_alerts(engine)) == ["a", "b", "c"]


def test_a_failing_row_fails_the_insert_with_sqlalchemys_error(engine: Engine) -> None:
    with Session(engine) as session:
        rows = [_alert("a"), {**_alert("b"), "kind": None}]
        with pytest.raises(IntegrityError):
            insert_many_returning_keys(
                session=session, table=ALERTS, rows=rows, conflict_on="incident_key"
            )
        session.rollback()
    assert _stored_alerts(engine) == {}


def test_outbox_rows_inserted_together_skip_existing_keys(engine: Engine) -> None:
    def message(key: str) -> dict[str, Any]:
        return {"dedupe_key": key, "channel": "#billing", "operation": "post", "kind": "alert"}

    with Session(engine) as session:
        insert_many_ignoring_conflict(
            session=session, table=OUTBOX, rows=[message("x")], conflict_on="dedupe_key"
        )
        insert_many_ignoring_conflict(
            session=session,
            table=OUTBOX,
            rows=[message("y"), message("x"), message("z")],
            conflict_on="dedupe_key",
        )
        sqlalchemy = _statement(OUTBOX, "dedupe_key", engine.dialect.name, returning=False)
        session.connection().execute(sqlalchemy, [message("w")])
        session.commit()
    with engine.connect() as connection:
        rows = connection.execute(select(OUTBOX).order_by(OUTBOX.c.dedupe_key)).mappings().all()
    assert [row["dedupe_key"] for row in rows] == ["w", "x", "y", "z"]
    reference = {k: v for k, v in rows[0].items() if k not in {"id", "dedupe_key", "created_at"}}
    for row in rows[1:]:
        assert {k: v for k, v in row.items() if k not in {"id", "dedupe_key", "created_at"}} == (
            reference
        )

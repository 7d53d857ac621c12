"""storage/rows.py: a row built by `new_row` and added by `add_new` is the same as one built
by the model and added by `session.add`: same state, same pending set, same stored row, and
gone again after a rollback."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, inspect
from sqlmodel import Session

from storage.models import Customer
from storage.rows import add_new, column_names, new_row

AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
VALUES = {"id": "cus_rows", "email": "a@example.com", "version_at": AT, "version_event_id": "evt_1"}


def _stored(engine: Engine, customer_id: str) -> dict[str, object] | None:
    with Session(engine) as session:
        row = session.get(Customer, customer_id)
        if row is None:
            return None
        return {name: getattr(row, name) for name in column_names(Customer) if name != "updated_at"}


def test_new_row_added_with_add_new_is_pending_then_stored_like_session_add(engine: Engine) -> None:
    with Session(engine) as session:
        row = new_row(Customer, dict(VALUES))
        assert inspect(row).transient
        add_new(session, row)
        assert inspect(row).pending and row in session.new
        session.add(Customer(**{**VALUES, "id": "cus_model"}))
        session.commit()
        assert inspect(row).persistent
    ours, theirs = _stored(engine, "cus_rows"), _stored(engine, "cus_model")
    assert ours is not None and theirs is not None
    assert {**ours, "id": None} == {**theirs, "id": None}


def test_add_new_rolled_back_leaves_the_row_transient_and_unstored(engine: Engine) -> None:
    with Session(engine) as session:
        row = new_row(Customer, dict(VALUES))
        add_new(session, row)
        session.flush()
        session.rollback()
        assert inspect(row).transient and row not in session
    assert _stored(engine, "cus_rows") is None


def test_a_new_row_changed_after_add_new_inserts_its_latest_values(engine: Engine) -> None:
    with Session(engine) as session:
        row = new_row(Customer, dict(VALUES))
        add_new(session, row)
        row.name = "Ada"
        session.commit()
    stored = _stored(engine, "cus_rows")
    assert stored is not None and stored["name"] == "Ada" and stored["email"] == "a@example.com"

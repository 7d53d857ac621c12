"""storage/rows.py: a row built by `new_row` and added by `add_new` is the same as one built
by the model and added by `session.add`: same state, same pending set, same stored row, and
gone again after a rollback."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import JSON, Engine, event, inspect, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, SQLModel

from storage.models import Charge, Customer, CustomerMrr, Invoice, MrrMovement, SubscriptionItem
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


# --- the rows `add_new` added are inserted by one executemany per table ---------------

# (model, values, inserted directly): a None where the column has a default is left to the
# unit of work (it leaves the column out of its INSERT, so the default is stored); a None in a
# JSON column is JSON null for both, and a list is stored as JSON.
PLAIN_ROWS: list[tuple[type[SQLModel], dict[str, Any], bool]] = [
    (Customer, VALUES, True),
    (
        Customer,
        {**VALUES, "name": 'Zoë "Q" \\ ü\n\t{x}', "email": None, "version_at": AT.replace(microsecond=123456), "raw": {"k": [None, "é"], "n": 2**53 + 1}},
        True,
    ),
    (
        Invoice,
        {
            "id": "in_rows",
            "raw": {"id": "in_rows", "lines": {"data": [{"amount": 1}]}, "note": None},
            "customer_id": "cus_rows",
            "status": "open",
            "currency": "usd",
            "amount_due": 2**40,
            "due_date": AT,
            "version_at": AT,
            "version_event_id": None,
        },
        True,
    ),
    (Charge, {"id": "ch_rows", "status": "failed", "currency": "eur", "amount": None, "version_at": AT}, False),
    (SubscriptionItem, {"id": "si_rows", "subscription_id": "sub_1", "currency": "usd", "interval": "month", "tiers": None}, True),
    (SubscriptionItem, {"id": "si_rows", "subscription_id": "sub_1", "currency": "usd", "interval": "year", "tiers": [{"up_to": 5}]}, True),
    (CustomerMrr, {"customer_id": "cus_rows", "currency": "usd", "mrr": 12, "changed_at": AT}, True),
]  # fmt: skip


def _key_column(model: type[SQLModel]) -> str:
    return "customer_id" if model is CustomerMrr else "id"


def _stored_columns(engine: Engine, model: type[SQLModel], key: str) -> dict[str, object]:
    """The stored row's values, and for each JSON column whether it is SQL NULL (a JSON null
    reads back as None too)."""
    table = model.__table__  # type: ignore[attr-defined]
    json_columns = [column for column in table.columns if isinstance(column.type, JSON)]
    nulls = [column.is_(None).label(f"{column.name} is SQL NULL") for column in json_columns]
    with engine.connect() as connection:
        query = select(table, *nulls).where(table.c[_key_column(model)] == key)
        row = connection.execute(query).one()
    return {name: value for name, value in row._mapping.items() if name != "updated_at"}


def _inserts(engine: Engine, *, compiled: bool) -> list[str]:
    """The INSERT statements run from now on, compiled by SQLAlchemy or as driver SQL."""
    statements: list[str] = []

    @event.listens_for(engine, "before_cursor_execute")
    def _seen(_conn, _cursor, statement, _params, context, _many) -> None:
        if (context.compiled is not None) == compiled and statement.startswith("INSERT"):
            statements.append(statement)

    return statements


def _direct_inserts(engine: Engine) -> list[str]:
    return _inserts(engine, compiled=False)


def _orm_inserts(engine: Engine) -> list[str]:
    return _inserts(engine, compiled=True)


@pytest.mark.parametrize(("model", "values", "direct_insert"), PLAIN_ROWS)
def test_rows_added_with_add_new_are_stored_as_the_unit_of_work_stores_them(
    engine: Engine, model: type[SQLModel], values: dict[str, Any], direct_insert: bool
) -> None:
    key = _key_column(model)
    direct = _direct_inserts(engine)
    with Session(engine, expire_on_commit=False) as session:
        ours = new_row(model, {**values, key: "ours"})
        theirs = new_row(model, {**values, key: "theirs"})
        add_new(session, ours)
        session.add(theirs)  # the unit of work's own INSERT
        session.commit()
        assert inspect(ours).persistent and inspect(theirs).persistent
        names = [name for name in column_names(model) if name not in (key, "updated_at")]
        assert {name: ours.__dict__[name] for name in names} == {
            name: theirs.__dict__[name] for name in names
        }
    stored_ours = _stored_columns(engine, model, "ours")
    stored_theirs = _stored_columns(engine, model, "theirs")
    assert {**stored_ours, key: None} == {**stored_theirs, key: None}
    assert len(direct) == (1 if direct_insert else 0)


def test_added_rows_are_inserted_in_one_statement_per_table_and_then_updated(
    engine: Engine,
) -> None:
    direct = _direct_inserts(engine)
    with Session(engine, expire_on_commit=False) as session:
        rows = [new_row(Customer, {**VALUES, "id": f"cus_{n}"}) for n in range(3)]
        for row in rows:
            add_new(session, row)
        session.flush()
        assert all(inspect(row).persistent for row in rows) and not session.new
        rows[1].name = "Grace"  # now an UPDATE of a persistent row
        session.commit()
    assert len(direct) == 1
    assert _stored_columns(engine, Customer, "cus_1")["name"] == "Grace"


def test_an_added_row_taken_out_before_the_flush_is_not_inserted(engine: Engine) -> None:
    with Session(engine) as session:
        row = new_row(Customer, dict(VALUES))
        add_new(session, row)
        session.expunge(row)
        session.commit()
        assert inspect(row).transient
    assert _stored(engine, "cus_rows") is None


def test_an_added_row_with_the_key_of_a_deleted_one_is_left_to_the_unit_of_work(
    engine: Engine,
) -> None:
    """The unit of work turns the pair into an UPDATE (of the attributes with history)."""
    with Session(engine) as session:
        for key in ("cus_add", "cus_add_new"):
            add_new(session, new_row(Customer, {**VALUES, "id": key}))
        session.commit()
    with Session(engine) as session:
        for key in ("cus_add", "cus_add_new"):
            session.delete(session.get(Customer, key))
            row = new_row(Customer, {**VALUES, "id": key, "name": "Again"})
            add_new(session, row) if key == "cus_add_new" else session.add(row)
        session.commit()
    ours, theirs = _stored(engine, "cus_add_new"), _stored(engine, "cus_add")
    assert ours is not None and theirs is not None
    assert {**ours, "id": None} == {**theirs, "id": None}


@pytest.mark.parametrize("add", ["add_new", "session.add"])
def test_a_failed_insert_of_added_rows_fails_the_flush_as_the_unit_of_work_does(
    engine: Engine, add: str
) -> None:
    with Session(engine) as session:
        add_new(session, new_row(Customer, dict(VALUES)))
        session.commit()
    with Session(engine) as session:
        row = new_row(Customer, {**VALUES, "name": "Twice"})
        add_new(session, row) if add == "add_new" else session.add(row)
        with pytest.raises(IntegrityError):
            session.flush()
        assert not session.is_active  # a rollback is needed, as after any failed flush
        session.rollback()
        assert inspect(row).transient
    stored = _stored(engine, "cus_rows")
    assert stored is not None and stored["name"] is None


def test_a_failed_insert_in_a_savepoint_rolls_back_only_the_savepoint(engine: Engine) -> None:
    with Session(engine) as session:
        add_new(session, new_row(Customer, dict(VALUES)))
        session.commit()
    with Session(engine) as session:
        kept = new_row(Customer, {**VALUES, "id": "cus_kept"})
        add_new(session, kept)
        with pytest.raises(IntegrityError), session.begin_nested():
            add_new(session, new_row(Customer, dict(VALUES)))
        session.commit()
    assert _stored(engine, "cus_kept") is not None


def test_added_rows_becoming_persistent_are_announced(engine: Engine) -> None:
    announced: list[object] = []
    with Session(engine) as session:
        event.listen(session, "pending_to_persistent", lambda _s, obj: announced.append(obj))
        row = new_row(Customer, dict(VALUES))
        add_new(session, row)
        session.flush()
        assert announced == [row]
        session.rollback()


def _movement(event_id: str) -> MrrMovement:
    values = {"customer_id": "cus_rows", "currency": "usd", "kind": "new", "amount": 5}
    return new_row(MrrMovement, {**values, "mrr_after": 5, "occurred_at": AT, "event_id": event_id})


def _stored_movements(engine: Engine) -> list[tuple[int, str]]:
    table = MrrMovement.__table__  # type: ignore[attr-defined]
    with engine.connect() as connection:
        query = select(table.c.id, table.c.event_id).order_by(table.c.id)
        return [(row.id, row.event_id) for row in connection.execute(query)]


def test_added_rows_with_a_generated_key_get_their_keys_in_the_order_they_were_added(
    engine: Engine,
) -> None:
    orm_inserts = _orm_inserts(engine)
    with Session(engine, expire_on_commit=False) as session:
        rows = [_movement(f"evt_{n}") for n in range(3)]
        for row in rows:
            add_new(session, row)
        session.flush()
        assert [row.id for row in rows] == [1, 2, 3]
        assert all(inspect(row).persistent for row in rows)
        assert session.get(MrrMovement, 2) is rows[1]
        rows[2].amount = 7  # an UPDATE of the row the key names
        session.commit()
    assert _stored_movements(engine) == [(1, "evt_0"), (2, "evt_1"), (3, "evt_2")]
    # PostgreSQL returns each row's key from psycopg's executemany (on the driver's cursor,
    # which SQLAlchemy's events do not see); on SQLite the ORM inserts them.
    assert bool(orm_inserts) == (engine.dialect.name != "postgresql")


def test_rows_with_a_generated_key_added_both_ways_are_keyed_in_the_order_added(
    engine: Engine,
) -> None:
    with Session(engine) as session:
        add_new(session, _movement("evt_a"))
        session.add(_movement("evt_b"))
        add_new(session, _movement("evt_c"))
        session.commit()
    assert _stored_movements(engine) == [(1, "evt_a"), (2, "evt_b"), (3, "evt_c")]

"""Finding customers in a real store (SQLite and PostgreSQL): by email, id and name part."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from storage.customer_summary import lookup_customers
from storage.db import make_engine, read_scope, session_scope
from storage.lookup import COUNT_CAP, InvalidQuery
from tests import store_rows as rows
from tests.store_rows import T0


def lookup(engine, text, **kwargs):
    with read_scope(engine) as session:
        return lookup_customers(session=session, text=text, now=T0, **kwargs)


def ids(answer):
    return [match.customer_id for match in answer.matches]


def test_email_matches_ignoring_case_and_whitespace(engine):
    with session_scope(engine) as session:
        rows.customer(session, id="cus_jane", email="Jane.Doe@Example.com")
        rows.customer(session, id="cus_other", email="john@example.com")
    for text in (
        "jane.doe@example.com",
        "  JANE.DOE@EXAMPLE.COM\t",
        "<mailto:Jane.Doe@example.com|Jane.Doe@example.com>",
    ):
        answer = lookup(engine, text)
        assert ids(answer) == ["cus_jane"], text
        assert answer.matches[0].email == "Jane.Doe@Example.com"


def test_one_email_several_customers_are_kept_apart(engine):
    with session_scope(engine) as session:
        rows.customer(
            session,
            id="cus_old",
            email="shared@example.com",
            name="Old",
            livemode=True,
            created=T0.replace(year=2020),
        )
        rows.customer(
            session,
            id="cus_new",
            email="shared@example.com",
            name="New",
            livemode=True,
            created=T0.replace(year=2025),
        )
        rows.customer(
            session, id="cus_test", email="shared@example.com", name="Test", livemode=False
        )
        rows.subscription(session, customer_id="cus_new", status="active")
        rows.subscription(session, customer_id="cus_old", status="canceled")
    answer = lookup(engine, "Shared@Example.com")
    assert ids(answer) == ["cus_new", "cus_old", "cus_test"]  # live first, newest first
    assert [m.status.value for m in answer.matches] == ["current", "cancelled", "none"]
    assert [m.livemode for m in answer.matches] == [True, True, False]
    assert answer.total == 3


def test_customer_id_is_exact(engine):
    with session_scope(engine) as session:
        rows.customer(session, id="cus_ABC123")
        rows.customer(session, id="cus_ABC1234")
    assert ids(lookup(engine, "cus_ABC123")) == ["cus_ABC123"]
    assert ids(lookup(engine, "cus_abc123")) == []  # Stripe ids are case-sensitive


def test_name_part_matches_anywhere_in_the_name(engine):
    with session_scope(engine) as session:
        rows.customer(session, id="cus_1", name="Acme Corporation", email="a@acme.test")
        rows.customer(session, id="cus_2", name="ACME Labs", email="b@acme.test")
        rows.customer(session, id="cus_3", name="Globex", email="c@globex.test")
        rows.customer(session, id="cus_4", name="Zoë Müller-王", email="d@x.test")
    assert ids(lookup(engine, "acme")) == ["cus_1", "cus_2"]
    assert ids(lookup(engine, "  Corp ")) == ["cus_1"]
    assert ids(lookup(engine, "MÜLLER-王")) == ["cus_4"]


def test_wildcards_and_sql_in_the_query_are_only_characters(engine):
    with session_scope(engine) as session:
        rows.customer(session, id="cus_pct", name="100% Growth", email="p@x.test")
        rows.customer(session, id="cus_und", name="snake_case ltd", email="s@x.test")
        rows.customer(session, id="cus_plain", name="1000 Growth snakeXcase", email="q@x.test")
        rows.customer(session, id="cus_quote", name="O'Brien & Sons", email="o@x.test")
    assert ids(lookup(engine, "100%")) == ["cus_pct"]
    assert ids(lookup(engine, "e_c")) == ["cus_und"]
    assert ids(lookup(engine, "o'brien")) == ["cus_quote"]
    assert ids(lookup(engine, "x' OR '1'='1")) == []
    assert ids(lookup(engine, "%' OR 1=1 --")) == []
    assert ids(lookup(engine, "Robert'); DROP TABLE customer;--")) == []
    assert ids(lookup(engine, "a\\b")) == []
    with pytest.raises(InvalidQuery):
        lookup(engine, "%_%")
    assert len(ids(lookup(engine, "growth"))) == 2  # the table is still there


def test_very_long_and_unicode_queries_get_an_answer(engine):
    with session_scope(engine) as session:
        rows.customer(session, id="cus_1", name="Jane", email="jane@example.com")
    assert ids(lookup(engine, "x" * 512)) == []
    assert ids(lookup(engine, "x" * 300 + "@example.com")) == []
    assert ids(lookup(engine, "🙂 emoji name")) == []
    assert ids(lookup(engine, "\u202ejane")) == ["cus_1"]  # a bidi override is dropped
    with pytest.raises(InvalidQuery, match="longer"):
        lookup(engine, "x" * 10_000)


def test_many_matches_are_limited_and_counted(engine):
    with session_scope(engine) as session:
        for n in range(25):
            rows.customer(
                session, id=f"cus_many{n:02d}", name=f"Many Customer {n:02d}", email=f"m{n}@x.test"
            )
    answer = lookup(engine, "many", limit=10)
    assert ids(answer) == [f"cus_many{n:02d}" for n in range(10)]
    assert (answer.total, answer.total_is_capped) == (25, False)


def test_counting_stops_at_the_cap(engine):
    with session_scope(engine) as session:
        for n in range(COUNT_CAP + 5):
            rows.customer(
                session, id=f"cus_lots{n:03d}", name=f"Lots {n:03d}", email=f"l{n}@x.test"
            )
    answer = lookup(engine, "lots", limit=3)
    assert len(answer.matches) == 3
    assert (answer.total, answer.total_is_capped) == (COUNT_CAP, True)


def test_no_match_suggests_close_emails(engine):
    with session_scope(engine) as session:
        rows.customer(session, id="cus_1", email="jane@example.com")
        rows.customer(session, id="cus_2", email="jane@elsewhere.org")
        rows.customer(session, id="cus_3", email="bob@example.com")
        rows.customer(session, id="cus_4", email="janet@example.com")
    domain_typo = lookup(engine, "jane@exmaple.com")
    assert domain_typo.matches == [] and domain_typo.total == 0
    assert domain_typo.suggestions[0] == "jane@example.com"
    assert "bob@example.com" not in domain_typo.suggestions
    local_typo = lookup(engine, "jnae@example.com")
    assert local_typo.suggestions[0] == "jane@example.com"
    assert lookup(engine, "someone@nowhere.test").suggestions == []


def test_no_match_suggests_close_names(engine):
    with session_scope(engine) as session:
        rows.customer(session, id="cus_1", name="Jonathan Smith", email="a@x.test")
        rows.customer(session, id="cus_2", name="Globex", email="b@x.test")
    answer = lookup(engine, "Smiht")
    assert answer.matches == []
    assert answer.suggestions == ["Jonathan Smith"]
    assert lookup(engine, "cus_missing").suggestions == []


def test_postgres_answers_name_parts_from_trigram_indexes(postgres_url):
    """The migration gives PostgreSQL trigram indexes; without them a name part is a table scan."""
    engine = make_engine(postgres_url)
    try:
        names = {index["name"] for index in inspect(engine).get_indexes("customer")}
    finally:
        engine.dispose()
    assert {"ix_customer_name_normalized_trgm", "ix_customer_email_normalized_trgm"} <= names
    assert "ix_customer_name_normalized" in names

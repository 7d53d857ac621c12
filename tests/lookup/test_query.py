"""What the user typed becomes a classified, normalised query, or a readable refusal."""

from __future__ import annotations

import pytest

from storage.lookup import (
    InvalidQuery,
    QueryKind,
    escape_like,
    normalize_email,
    normalize_name,
    parse_query,
)


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("  Jane@Example.COM \n", QueryKind.EMAIL, "jane@example.com"),
        ("<mailto:Jane@Example.com|Jane@Example.com>", QueryKind.EMAIL, "jane@example.com"),
        ('"jane@example.com"', QueryKind.EMAIL, "jane@example.com"),
        ("cus_NffrFeUfNV2Hib", QueryKind.CUSTOMER_ID, "cus_NffrFeUfNV2Hib"),
        ("  Jane   DOE ", QueryKind.NAME, "jane doe"),
        ("Ｊａｎｅ", QueryKind.NAME, "jane"),  # full-width letters, NFKC
        ("Zoë 王伟", QueryKind.NAME, "zoë 王伟"),
        ("cus_abc def", QueryKind.NAME, "cus_abc def"),
        ("100%_off", QueryKind.NAME, "100%_off"),
        ("Robert'); DROP TABLE customer;--", QueryKind.NAME, "robert'); drop table customer;--"),
        ("jane\x00@example.com", QueryKind.EMAIL, "jane@example.com"),
    ],
)
def test_queries_are_classified_and_normalised(text, kind, value):
    query = parse_query(text)
    assert (query.kind, query.value) == (kind, value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   \t ", "empty"),
        ('""', "empty"),
        ("%%%", "no letters"),
        ("'; --", "no letters"),
        ("<@U024BE7LH>", "mention"),
        ("<#C024BE7LR|general>", "mention"),
        ("a" * 513, "longer than 512"),
        (None, "text"),
    ],
)
def test_empty_or_garbled_queries_are_refused_with_a_reason(text, reason):
    with pytest.raises(InvalidQuery, match=reason):
        parse_query(text)


def test_a_query_of_the_longest_stored_length_is_still_a_query():
    assert parse_query("a" * 512).kind is QueryKind.NAME


def test_like_wildcards_are_escaped():
    assert escape_like(r"50%_a\b") == r"50\%\_a\\b"


def test_normalisers_agree_with_what_handlers_store():
    assert normalize_email("  A.B@Example.Com ") == "a.b@example.com"
    assert normalize_email("   ") is None
    assert normalize_name("  ACME\tCorp  ") == "acme corp"
    assert normalize_name(None) is None

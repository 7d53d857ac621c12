"""Finding customers in the store: by email, by `cus_` id, or by part of a name.

The query text is data, never code: it is cleaned (control characters dropped, Slack's
`<mailto:...|...>` wrapping undone, surrounding quotes removed), classified, normalised the
same way the handlers normalise what they store (`normalize_email`, `normalize_name`), and
only ever reaches SQL as a bound parameter. `%` and `_` in a name part are escaped, so they
match themselves.

Speed: an email is an equality on the indexed `email_normalized`, an id is the primary key,
and a name part is `name_normalized LIKE '%part%'`: on PostgreSQL a trigram (GIN) index
answers it; on SQLite the scan runs over the narrow `ix_customer_name_normalized` index, not
the table. At most `limit` customers are returned and the total is counted up to
`COUNT_CAP` (a query that matches thousands of customers needs refining, not counting).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import ColumnElement, Row, bindparam, func, select
from sqlmodel import Session

from storage.models import Customer

MAX_QUERY_LENGTH = 512  # the email and name columns hold at most 512 characters
DEFAULT_LIMIT = 10
COUNT_CAP = 100  # "more than 100 matches" asks for a better query; counting further costs a scan
CUSTOMER_ID = re.compile(r"cus_[A-Za-z0-9]{1,250}")
QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’", "«": "»", "`": "`"}


# Every customer column but `raw`: a lookup never needs the Stripe object itself.
CUSTOMER_COLUMNS = tuple(column for column in Customer.__table__.c if column.name != "raw")
CUSTOMERS_BY_ID = select(*CUSTOMER_COLUMNS).where(Customer.id.in_(bindparam("ids", expanding=True)))


class QueryKind(StrEnum):
    EMAIL = "email"
    CUSTOMER_ID = "customer_id"
    NAME = "name"


class InvalidQuery(ValueError):
    """The text cannot be a customer query (empty, too long, a Slack mention, no letters)."""


@dataclass(frozen=True, slots=True)
class LookupQuery:
    kind: QueryKind
    text: str  # cleaned, as the user typed it (for messages)
    value: str  # normalised, as stored


@dataclass(frozen=True, slots=True)
class CustomerMatches:
    customers: list[Row]  # rows with Customer's columns except `raw`
    total: int  # how many customers match, counted up to COUNT_CAP + 1
    total_is_capped: bool  # True when there are more than COUNT_CAP matches


def normalize_email(email: str | None) -> str | None:
    """How emails are stored and matched: trimmed and lower-cased (Stripe keeps the case)."""
    if email is None:
        return None
    return email.strip().lower() or None


def normalize_name(name: str | None) -> str | None:
    """How names are stored and matched: Unicode NFKC, whitespace collapsed, lower-cased."""
    if name is None:
        return None
    return " ".join(unicodedata.normalize("NFKC", name).split()).lower() or None


def parse_query(text: object) -> LookupQuery:
    """Classify what the user typed. Raises `InvalidQuery` with a reason people can read."""
    if not isinstance(text, str):
        raise InvalidQuery("the query must be text")
    cleaned = _unquote(_unwrap_slack(_drop_control_characters(text).strip())).strip()
    if not cleaned:
        raise InvalidQuery("the query is empty")
    if len(cleaned) > MAX_QUERY_LENGTH:
        raise InvalidQuery(f"the query is longer than {MAX_QUERY_LENGTH} characters")
    if not any(character.isalnum() for character in cleaned):
        raise InvalidQuery("the query has no letters or digits")
    if CUSTOMER_ID.fullmatch(cleaned):
        return LookupQuery(QueryKind.CUSTOMER_ID, cleaned, cleaned)
    if "@" in cleaned and not any(character.isspace() for character in cleaned):
        return LookupQuery(QueryKind.EMAIL, cleaned, normalize_email(cleaned) or "")
    return LookupQuery(QueryKind.NAME, cleaned, normalize_name(cleaned) or "")


def _drop_control_characters(text: str) -> str:
    # NUL and friends: PostgreSQL refuses NUL in text, and none of them is ever meant.
    return "".join(
        " " if character in "\t\n\r" else character
        for character in text
        if character in "\t\n\r" or unicodedata.category(character) not in ("Cc", "Cf")
    )


def _unwrap_slack(text: str) -> str:
    """Slack sends `<mailto:a@b.com|a@b.com>` for emails, `<@U123>` for mentions."""
    if not (text.startswith("<") and text.endswith(">")):
        return text
    inner = text[1:-1]
    if inner[:1] in ("@", "#", "!"):
        raise InvalidQuery("that is a Slack mention, not a customer")
    target, _, label = inner.partition("|")
    if target.startswith("mailto:"):
        return target.removeprefix("mailto:")
    return label or target


def _unquote(text: str) -> str:
    if len(text) >= 2 and QUOTES.get(text[0]) == text[-1]:
        return text[1:-1]
    return text


def escape_like(value: str) -> str:
    """`%`, `_` and the escape character itself match only themselves (ESCAPE '\\')."""
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def contains(column: ColumnElement[str | None], part: str, *, dialect: str) -> ColumnElement[bool]:
    """`part` anywhere in `column`, compared exactly (both sides are normalised). SQLite's
    `instr` is a plain substring search, faster than its LIKE; PostgreSQL's LIKE is what
    the trigram index answers."""
    if dialect == "sqlite":
        return func.instr(column, part) > 0
    return column.like(f"%{escape_like(part)}%", escape="\\")


def find_customers(
    *, session: Session, query: LookupQuery, limit: int = DEFAULT_LIMIT
) -> CustomerMatches:
    """The customers matching `query` (at most `limit`), each one separately: one email may
    belong to several Stripe customers and they are never merged.

    Two steps: the ids of up to COUNT_CAP + 1 matches come from a narrow index alone (for a
    name part, a scan of `ix_customer_name_normalized` that stops at the cap), then only the
    page shown is read from the table. Name matches are ordered by name; email and id
    matches live mode first, newest first."""
    if query.kind is QueryKind.NAME:
        dialect = session.get_bind().dialect.name
        found = (
            session.connection()
            .execute(
                select(Customer.id, Customer.name_normalized)
                .where(contains(Customer.name_normalized, query.value, dialect=dialect))
                .limit(COUNT_CAP + 1)
            )
            .all()
        )
        ordered = sorted(found, key=lambda row: (row.name_normalized or "", row.id))
    else:
        column = Customer.id if query.kind is QueryKind.CUSTOMER_ID else Customer.email_normalized
        found = (
            session.connection()
            .execute(
                select(Customer.id, Customer.livemode, Customer.created)
                .where(column == query.value)
                .limit(COUNT_CAP + 1)
            )
            .all()
        )
        ordered = sorted(found, key=_live_and_newest_first)
    page = [row.id for row in ordered[:limit]]  # Core rows: the ORM adds nothing but cost here
    rows = (
        {row.id: row for row in session.connection().execute(CUSTOMERS_BY_ID, {"ids": page})}
        if page
        else {}
    )
    customers = [rows[customer_id] for customer_id in page if customer_id in rows]
    return CustomerMatches(customers, min(len(found), COUNT_CAP), len(found) > COUNT_CAP)


def _live_and_newest_first(row: Row) -> tuple:
    created = row.created.timestamp() if row.created is not None else float("-inf")
    return (not row.livemode, -created, row.id)

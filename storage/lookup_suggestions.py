"""Close matches for a query that matched nobody ("did you mean jane@example.com?").

The work is bounded: a few indexed queries fetch at most `CANDIDATES` stored values that
share something with the query, and `difflib` ranks only those. For an email the
candidates share its local part (a typo in the domain: `jane@exmaple.com`) or its domain
(a typo in the local part: `jnae@example.com`). For a name part they contain the first three
characters of one of its words. A typo in those first three characters finds nothing, and
a `cus_` id gets no suggestions: ids are copied, not typed.
"""

from __future__ import annotations

from difflib import SequenceMatcher, get_close_matches

from sqlalchemy import ColumnElement, and_, select
from sqlmodel import Session

from storage.lookup import LookupQuery, QueryKind, contains, escape_like
from storage.models import Customer

CANDIDATES = 200
SUGGESTIONS = 3
EMAIL_CUTOFF = 0.8
NAME_CUTOFF = 0.75


def suggest_close_matches(
    *, session: Session, query: LookupQuery, limit: int = SUGGESTIONS
) -> list[str]:
    """Stored emails or names close to the query, best first (possibly none)."""
    if query.kind is QueryKind.EMAIL:
        return _email_suggestions(session, query.value, limit)
    if query.kind is QueryKind.NAME:
        return _name_suggestions(session, query.value, limit)
    return []


def _email_suggestions(session: Session, email: str, limit: int) -> list[str]:
    """Same local part first (an index range: cheap); the same domain only when that found
    nothing close, as a domain suffix cannot use an index on SQLite."""
    local, _, domain = email.rpartition("@")
    column = Customer.email_normalized
    conditions = []
    if local:
        conditions.append(_starts_with(session, column, f"{local}@"))
    if domain:
        conditions.append(column.like(f"%@{escape_like(domain)}", escape="\\"))
    candidates: set[str] = set()
    for condition in conditions:
        rows = session.connection().scalars(
            select(column).where(condition).distinct().limit(CANDIDATES)
        )
        candidates.update(value for value in rows if value and value != email)
        close = get_close_matches(email, sorted(candidates), n=limit, cutoff=EMAIL_CUTOFF)
        if close:
            return close
    return []


def _name_suggestions(session: Session, name: str, limit: int) -> list[str]:
    words = [word for word in name.split() if len(word) >= 3][:2]
    dialect = session.get_bind().dialect.name
    candidates: set[tuple[str, str]] = set()
    for word in words:
        rows = session.connection().execute(
            select(Customer.name, Customer.name_normalized)
            .where(contains(Customer.name_normalized, word[:3], dialect=dialect))
            .limit(CANDIDATES)
        )
        candidates.update((display, stored) for display, stored in rows if display and stored)
    scored = []
    for display, stored in candidates:
        score = max(SequenceMatcher(None, name, part).ratio() for part in [stored, *stored.split()])
        if score >= NAME_CUTOFF:
            scored.append((-score, display))
    return [display for _, display in sorted(scored)[:limit]]


def _starts_with(session: Session, column, prefix: str) -> ColumnElement[bool]:
    """A prefix test that an index can answer: a range on SQLite (whose LIKE ignores case
    and so cannot use a plain index), LIKE on PostgreSQL (answered by the trigram index)."""
    if session.get_bind().dialect.name == "sqlite":
        upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        return and_(column >= prefix, column < upper)
    return column.like(f"{escape_like(prefix)}%", escape="\\")

"""Backfill: read Stripe's history through its list endpoints into the store.

Each page is one transaction: its objects go through `apply_object` (the same conversion
and version guard as webhooks) and the cursor moves past the page in the same commit, so
an interrupted run resumes after the last stored page (see `storage/models/sync.py`).

Versions: a backfilled object is stamped with the time its page was requested, floored to
the second and less one second. Stripe's event `created` has one-second resolution, so any
webhook event from the second of the read (or later) beats the backfill, and the backfill
beats every event from before it. The read can only be older than such an event, never
newer, so losing those ties is the safe side.

No reactions: backfilled objects carry no event, so nothing posts to Slack. The conversion
writes the customer's timeline (dated from the objects); once every subscription page is
stored, the MRR ledger is brought in line, dated at the objects' own times
(`handlers/sync/history.py`). The optional `after_object(session, changes)` hook runs in
the page's transaction for each object.

A page that loses a race with a webhook writing the same rows (a deadlock, or both inserting
the same new row) is rolled back and stored again; the version guard decides the winner.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import stripe
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from handlers.stripe.objects import apply_object
from handlers.stripe.registry import Change
from handlers.sync.history import LedgerFeed, touched_subscriptions
from handlers.sync.pacing import Pacer
from storage import sync as cursors
from storage.db import session_scope
from storage.models.sync import SyncCursor
from storage.mrr import DEFAULT_POLICY, MrrPolicy
from storage.types import utcnow

logger = logging.getLogger(__name__)

# --only value -> extra list parameters. Stripe's default subscription list leaves out
# canceled ones; status=all returns every status.
LIST_PARAMS: dict[str, dict[str, Any]] = {
    "customers": {},
    "subscriptions": {"status": "all"},
    "invoices": {},
    "charges": {},
    "refunds": {},
}
OBJECT_TYPES: tuple[str, ...] = tuple(LIST_PARAMS)
PAGE_SIZE = 100  # Stripe's maximum `limit`
CONVERSION_ERRORS = (ValueError, KeyError, TypeError, LookupError)
RACE_ERRORS = (OperationalError, IntegrityError)  # a deadlock, a row inserted meanwhile
PAGE_ATTEMPTS = 5


class ApplyObject(Protocol):
    def __call__(
        self,
        session: Session,
        obj: dict[str, Any],
        *,
        version_at: datetime,
        source_event_id: str | None = None,
    ) -> list[Change]: ...


AfterObject = Callable[[Session, list[Change]], None]


class UnknownObjectType(ValueError):
    """An --only value that is not one of OBJECT_TYPES."""


class BackfillInterrupted(RuntimeError):
    """Stripe stopped answering mid-way; the cursor is saved and a new run resumes there."""

    def __init__(self, object_type: str, starting_after: str | None, cause: str) -> None:
        where = f"after {starting_after}" if starting_after else "from the start"
        super().__init__(
            f"backfill of {object_type} stopped ({cause}); run it again to resume {where}"
        )
        self.object_type = object_type
        self.starting_after = starting_after


@dataclass(frozen=True, slots=True)
class Progress:
    object_type: str
    pages: int
    fetched: int
    applied: int
    skipped: int
    done: bool
    resumed_from: str | None = None
    ledger_lines: int = 0  # MRR ledger lines written after the subscriptions were read

    @classmethod
    def of(cls, cursor: SyncCursor, *, done: bool, resumed_from: str | None) -> Progress:
        return cls(
            cursor.object_type,
            cursor.pages,
            cursor.fetched,
            cursor.applied,
            cursor.skipped,
            done,
            resumed_from,
        )


def parse_only(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """`"customers,invoices"` -> ("customers", "invoices"), in backfill order."""
    if value is None:
        return OBJECT_TYPES
    names = [
        part.strip().lower() for part in (value.split(",") if isinstance(value, str) else value)
    ]
    names = [name for name in names if name]
    unknown = [name for name in names if name not in LIST_PARAMS]
    if unknown or not names:
        raise UnknownObjectType(
            f"unknown --only value {', '.join(map(repr, unknown)) or '(empty)'}; "
            f"choose from {', '.join(OBJECT_TYPES)}"
        )
    return tuple(name for name in OBJECT_TYPES if name in names)


def default_apply_object() -> ApplyObject:
    """The real conversion and version guard (tests may pass a recording wrapper)."""
    return apply_object


def version_for_read(started: datetime) -> datetime:
    return started.replace(microsecond=0) - timedelta(seconds=1)


@dataclass
class Backfill:
    engine: Engine
    client: stripe.StripeClient
    pacer: Pacer
    apply_object: ApplyObject | None = None
    after_object: AfterObject | None = None
    now: Callable[[], datetime] = utcnow
    on_progress: Callable[[Progress], None] | None = None
    page_size: int = PAGE_SIZE
    feed_ledger: bool = True
    policy: MrrPolicy = DEFAULT_POLICY
    _apply: ApplyObject | None = field(default=None, init=False, repr=False)
    _touched: dict[str, set[str]] = field(default_factory=dict, init=False, repr=False)

    def run(
        self,
        *,
        only: Iterable[str] = OBJECT_TYPES,
        since: datetime | None = None,
        restart: bool = False,
    ) -> list[Progress]:
        """Backfill each type in turn; raises `BackfillInterrupted` where Stripe gave up."""
        self._apply = self.apply_object or default_apply_object()
        return [
            self.run_type(name, since=since, restart=restart) for name in parse_only(list(only))
        ]

    def run_type(
        self, name: str, *, since: datetime | None = None, restart: bool = False
    ) -> Progress:
        if self._apply is None:
            self._apply = self.apply_object or default_apply_object()
        with session_scope(self.engine) as session:
            cursor = cursors.start_or_resume(
                session=session, object_type=name, since=since, now=self.now(), restart=restart
            )
            resumed_from = cursor.starting_after
        logger.info(
            "backfill.type.started", extra={"object_type": name, "resumed_from": resumed_from}
        )
        service = getattr(self.client.v1, name)
        params = self._params(name, since=since, starting_after=resumed_from)
        try:
            page, started = self._fetch(lambda: service.list(params))
            while True:
                self._store_page(name, page, started, resumed_from)
                if not page.has_more or not page.data:
                    break
                page, started = self._fetch(page.next_page)
        except stripe.StripeError as exc:
            raise self._interrupted(name, exc) from exc
        progress = self._finish(name, resumed_from)
        if name == "subscriptions" and self.feed_ledger:
            now = self.now()
            touched, self._touched = self._touched, {}
            lines = LedgerFeed(self.engine, self.policy).feed(touched, read_at=now, now=now)
            progress = replace(progress, ledger_lines=lines)
        return progress

    def _params(
        self, name: str, *, since: datetime | None, starting_after: str | None
    ) -> dict[str, Any]:
        params: dict[str, Any] = {"limit": self.page_size, **LIST_PARAMS[name]}
        if since is not None:
            params["created"] = {"gte": int(since.timestamp())}
        if starting_after:
            params["starting_after"] = starting_after
        return params

    def _fetch(self, request: Callable[[], Any]) -> tuple[Any, datetime]:
        started: list[datetime] = []

        def timed() -> Any:
            started[:] = [self.now()]
            return request()

        page = self.pacer.call(timed)
        return page, started[0]

    def _store_page(
        self, name: str, page: Any, started: datetime, resumed_from: str | None
    ) -> Progress:
        # The body exactly as Stripe sent it: plain dicts, no client-side conversions.
        objects: list[dict[str, Any]] = json.loads(page.last_response.body)["data"]
        version_at = version_for_read(started)
        for attempt in range(1, PAGE_ATTEMPTS + 1):
            touched: list[Change] = []
            try:
                with session_scope(self.engine) as session:
                    applied, skipped = self._apply_all(session, name, objects, version_at, touched)
                    cursor = cursors.record_page(
                        session=session,
                        object_type=name,
                        last_id=objects[-1]["id"] if objects else None,
                        fetched=len(objects),
                        applied=applied,
                        skipped=skipped,
                        now=self.now(),
                    )
                    progress = Progress.of(cursor, done=False, resumed_from=resumed_from)
                break
            except RACE_ERRORS as exc:
                if attempt == PAGE_ATTEMPTS:
                    raise
                logger.info(
                    "backfill.page.retrying",
                    extra={"object_type": name, "error": type(exc).__name__, "attempt": attempt},
                )
        for customer_id, ids in touched_subscriptions(touched).items():
            self._touched.setdefault(customer_id, set()).update(ids)
        if self.on_progress:
            self.on_progress(progress)
        return progress

    def _apply_all(
        self,
        session: Session,
        name: str,
        objects: list[dict[str, Any]],
        version_at: datetime,
        touched: list[Change],
    ) -> tuple[int, int]:
        assert self._apply is not None
        applied = skipped = 0
        for obj in objects:
            try:
                with session.begin_nested():
                    changes = self._apply(session, obj, version_at=version_at)
                    if self.after_object:
                        self.after_object(session, changes)
            except CONVERSION_ERRORS as exc:
                skipped += 1
                logger.warning(
                    "backfill.object.skipped",
                    extra={
                        "object_type": name,
                        "object_id": obj.get("id"),
                        "error": type(exc).__name__,
                    },
                )
                continue
            touched.extend(changes)
            applied += any(change.applied for change in changes)
        return applied, skipped

    def _finish(self, name: str, resumed_from: str | None) -> Progress:
        with session_scope(self.engine) as session:
            cursor = cursors.finish(session=session, object_type=name, now=self.now())
            progress = Progress.of(cursor, done=True, resumed_from=resumed_from)
        logger.info(
            "backfill.type.finished", extra={"object_type": name, "fetched": progress.fetched}
        )
        if self.on_progress:
            self.on_progress(progress)
        return progress

    def _interrupted(self, name: str, exc: stripe.StripeError) -> BackfillInterrupted:
        cause = _describe(exc)
        with session_scope(self.engine) as session:
            cursor = cursors.mark_failed(
                session=session, object_type=name, error=cause, now=self.now()
            )
            starting_after = cursor.starting_after if cursor else None
        logger.error("backfill.type.interrupted", extra={"object_type": name, "error": cause})
        return BackfillInterrupted(name, starting_after, cause)


def _describe(exc: stripe.StripeError) -> str:
    if isinstance(exc, stripe.AuthenticationError):
        return "Stripe refused STRIPE_API_KEY (401)"
    if isinstance(exc, stripe.PermissionError):
        return "STRIPE_API_KEY may not read this list (403); give the restricted key read access"
    status = f"HTTP {exc.http_status}" if exc.http_status else "no response"
    message = exc.user_message or type(exc).__name__
    return f"{status}: {message}"

"""Reconciliation: find what the webhook feed missed and repair it through the normal path.

1. Missed events: Stripe keeps events for 30 days. Every event from that window that is not
   in our inbox is handed to `refeed_event` (into the inbox with source "reconcile"), so the
   worker applies it like any other. Events from before the last complete backfill started
   are skipped: that backfill already read the state they describe.
2. Drifted objects: Stripe's lists of live subscriptions (its default list: not ended) and
   of open invoices are read page by page and applied as a backfill would (version = read
   time, so newer webhook data still wins). A stored subscription or open invoice that is
   not in those lists is fetched by id: that is how a missed cancellation or payment shows.
   An object counts as drifted when applying Stripe's copy changed one of its stored
   columns (or a subscription's items).
3. The report says how many objects drifted, of which kind, and the MRR before and after.
   `drift_report_text` is None when nothing was wrong, so a job posts only then.

This is a plain function with its dependencies passed in; the scheduler (issue 6) calls it
as the `reconcile` job, and `billbot reconcile` runs it once.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import stripe
from sqlalchemy import Engine
from sqlmodel import Session, select

from handlers.sync.backfill import OBJECT_TYPES, ApplyObject, default_apply_object, version_for_read
from handlers.sync.pacing import Pacer
from storage.db import read_scope, session_scope
from storage.models import Invoice, StripeEvent, Subscription, SubscriptionItem
from storage.models.sync import SyncCursor, SyncStatus
from storage.money import format_money
from storage.mrr import subscription_mrr
from storage.types import utcnow

logger = logging.getLogger(__name__)

EVENT_WINDOW = timedelta(days=30)  # how long Stripe keeps events
LIVE_SUBSCRIPTION_STATUSES = ("incomplete", "trialing", "active", "past_due", "unpaid", "paused")
NOT_COMPARED = {"raw", "version_at", "version_event_id", "updated_at"}

RefeedEvent = Callable[[Session, dict[str, Any]], bool]


@dataclass
class DriftReport:
    since: datetime
    missed_events: Counter[str] = field(default_factory=Counter)  # event type -> count
    checked: Counter[str] = field(default_factory=Counter)  # object kind -> count
    drifted: dict[str, list[str]] = field(default_factory=dict)  # object kind -> ids
    gone: list[str] = field(default_factory=list)  # stored ids Stripe no longer knows
    mrr_before: dict[str, Decimal] = field(default_factory=dict)  # currency -> minor units
    mrr_after: dict[str, Decimal] = field(default_factory=dict)

    @property
    def something_was_wrong(self) -> bool:
        return bool(self.missed_events or any(self.drifted.values()) or self.gone)


def insert_missed_event(session: Session, event: dict[str, Any]) -> bool:
    """Default re-feed: an inbox row with source "reconcile" (the worker applies it).

    Stands in until `storage/inbox.py` lands; swap in its insert function then.
    """
    from handlers.stripe.events import parse_event

    parsed = parse_event(event)
    if session.get(StripeEvent, parsed.id) is not None:
        return False
    session.add(
        StripeEvent(
            id=parsed.id,
            type=parsed.type,
            api_version=parsed.api_version,
            livemode=parsed.livemode,
            created=parsed.created,
            object_id=parsed.object_id,
            source="reconcile",
            payload=json.dumps(event, separators=(",", ":")),
        )
    )
    return True


@dataclass
class Reconciler:
    engine: Engine
    client: stripe.StripeClient
    pacer: Pacer
    apply_object: ApplyObject | None = None
    refeed_event: RefeedEvent = insert_missed_event
    now: Callable[[], datetime] = utcnow

    def run(self) -> DriftReport:
        apply = self.apply_object or default_apply_object()
        report = DriftReport(since=self._event_window_start())
        report.mrr_before = self._mrr()
        self._refeed_missed_events(report)
        self._recheck(
            "subscriptions", apply, report, {}, _live_subscription
        )  # Stripe's default: not ended
        self._recheck(
            "invoices", apply, report, {"status": "open"}, lambda obj: obj.get("status") == "open"
        )
        report.mrr_after = self._mrr()
        logger.info(
            "reconcile.finished",
            extra={
                "missed_events": sum(report.missed_events.values()),
                "drifted": _count(report.drifted),
            },
        )
        return report

    # -- events ----------------------------------------------------------------------------
    def _event_window_start(self) -> datetime:
        start = self.now() - EVENT_WINDOW + timedelta(minutes=5)  # stay clear of the edge
        with read_scope(self.engine) as session:  # (read_scope expires rows when it ends)
            done = [
                (c.object_type, c.started_at)
                for c in session.exec(select(SyncCursor))
                if c.status == SyncStatus.DONE and c.since is None
            ]
        if {name for name, _ in done} >= set(OBJECT_TYPES):
            start = max(start, min(started for _, started in done))
        return start

    def _refeed_missed_events(self, report: DriftReport) -> None:
        params = {"limit": 100, "created": {"gte": int(report.since.timestamp())}}
        for events, _ in self._pages(self.client.v1.events, params):
            with session_scope(self.engine) as session:
                ids = [e["id"] for e in events]
                known = set(session.exec(select(StripeEvent.id).where(StripeEvent.id.in_(ids))))  # type: ignore[attr-defined]
                for event in events:
                    if event["id"] not in known and self.refeed_event(session, event):
                        report.missed_events[event["type"]] += 1

    # -- objects ---------------------------------------------------------------------------
    def _recheck(
        self,
        kind: str,
        apply: ApplyObject,
        report: DriftReport,
        params: dict[str, Any],
        wanted: Callable[[dict[str, Any]], bool],
    ) -> None:
        stored = self._stored_ids(kind)
        seen: set[str] = set()
        for objects, version_at in self._pages(
            getattr(self.client.v1, kind), {"limit": 100, **params}
        ):
            live = [obj for obj in objects if wanted(obj)]
            seen.update(obj["id"] for obj in live)
            self._apply_and_compare(kind, apply, live, version_at, report)
        for object_id in sorted(stored - seen):
            fetched = self._retrieve(kind, object_id, report)
            if fetched is not None:
                self._apply_and_compare(kind, apply, [fetched[0]], fetched[1], report)

    def _stored_ids(self, kind: str) -> set[str]:
        with read_scope(self.engine) as session:
            if kind == "subscriptions":
                query = select(Subscription.id).where(
                    Subscription.status.in_(LIVE_SUBSCRIPTION_STATUSES)
                )  # type: ignore[attr-defined]
            else:
                query = select(Invoice.id).where(Invoice.status == "open")
            return set(session.exec(query))

    def _retrieve(
        self, kind: str, object_id: str, report: DriftReport
    ) -> tuple[dict[str, Any], datetime] | None:
        service = getattr(self.client.v1, kind)
        started: list[datetime] = []

        def fetch() -> Any:
            started[:] = [self.now()]
            return service.retrieve(object_id)

        try:
            obj = self.pacer.call(fetch)
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:
                raise
            report.gone.append(object_id)
            logger.warning(
                "reconcile.object.gone", extra={"object_type": kind, "object_id": object_id}
            )
            return None
        return json.loads(obj.last_response.body), version_for_read(started[0])

    def _apply_and_compare(
        self,
        kind: str,
        apply: ApplyObject,
        objects: list[dict[str, Any]],
        version_at: datetime,
        report: DriftReport,
    ) -> None:
        with session_scope(self.engine) as session:
            for obj in objects:
                before = snapshot(session, kind, obj["id"])
                apply(session, obj, version_at=version_at)
                session.flush()
                report.checked[kind] += 1
                if snapshot(session, kind, obj["id"]) != before:
                    report.drifted.setdefault(kind, []).append(obj["id"])
                    logger.info(
                        "reconcile.object.drifted",
                        extra={"object_type": kind, "object_id": obj["id"]},
                    )

    def _pages(
        self, service: Any, params: dict[str, Any]
    ) -> Iterator[tuple[list[dict[str, Any]], datetime]]:
        """Each page's objects as Stripe sent them, with the version a read at that time has."""
        started: list[datetime] = []

        def timed(request: Callable[[], Any]) -> Callable[[], Any]:
            def call() -> Any:
                started[:] = [self.now()]
                return request()

            return call

        page = self.pacer.call(timed(lambda: service.list(params)))
        while True:
            yield json.loads(page.last_response.body)["data"], version_for_read(started[0])
            if not page.has_more or not page.data:
                return
            page = self.pacer.call(timed(page.next_page))

    def _mrr(self) -> dict[str, Decimal]:
        totals: dict[str, Decimal] = {}
        with read_scope(self.engine) as session:
            for sub in session.exec(select(Subscription)):
                items = session.exec(
                    select(SubscriptionItem).where(SubscriptionItem.subscription_id == sub.id)
                )
                totals[sub.currency] = totals.get(sub.currency, Decimal(0)) + subscription_mrr(
                    sub, list(items)
                )
        return totals


def _live_subscription(obj: dict[str, Any]) -> bool:
    return obj.get("status") in LIVE_SUBSCRIPTION_STATUSES


def snapshot(session: Session, kind: str, object_id: str) -> Any:
    """What a reader of the store sees of one object, without bookkeeping columns."""
    model = Subscription if kind == "subscriptions" else Invoice
    row = session.get(model, object_id)
    if row is None:
        return None
    state = row.model_dump(exclude=NOT_COMPARED)
    if kind == "subscriptions":
        items = session.exec(
            select(SubscriptionItem).where(SubscriptionItem.subscription_id == object_id)
        )
        state["items"] = sorted((item.model_dump() for item in items), key=lambda item: item["id"])
    return state


def _count(drifted: dict[str, list[str]]) -> int:
    return sum(len(ids) for ids in drifted.values())


def drift_report_text(report: DriftReport) -> str | None:
    """A short report for the digest channel, or None when nothing was wrong."""
    if not report.something_was_wrong:
        return None
    lines = []
    if report.drifted:
        kinds = ", ".join(
            f"{len(ids)} {kind}" for kind, ids in sorted(report.drifted.items()) if ids
        )
        lines.append(
            f"Repaired {_count(report.drifted)} objects that differed from Stripe: {kinds}."
        )
    if report.missed_events:
        kinds = ", ".join(f"{name} ×{n}" for name, n in sorted(report.missed_events.items()))
        lines.append(
            f"Re-queued {sum(report.missed_events.values())} missed webhook events: {kinds}."
        )
    if report.gone:
        lines.append(
            f"{len(report.gone)} stored objects no longer exist in Stripe: {', '.join(report.gone[:5])}."
        )
    for currency in sorted(set(report.mrr_before) | set(report.mrr_after)):
        before = report.mrr_before.get(currency, Decimal(0))
        after = report.mrr_after.get(currency, Decimal(0))
        if before != after:
            lines.append(
                f"MRR ({currency.upper()}): {format_money(before, currency)} before repair, "
                f"{format_money(after, currency)} after ({format_money(after - before, currency, signed=True)})."
            )
    return "\n".join(lines)

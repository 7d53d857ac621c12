"""Reconciliation: find what the webhook feed missed and repair it through the normal path.

1. Missed events: Stripe keeps events for 30 days. Every event from that window that is not
   in our inbox is inserted into it (`storage.inbox.insert_events`, source "reconcile"), so
   the worker applies it like any other, except that it never alerts: an event missed days
   ago is history, and the drift report is the notice (`AppliedEvent.is_live`). Events from
   before the last complete backfill started are skipped: that backfill read their state.
2. Drifted objects: Stripe's lists of live subscriptions (its default list: not ended) and
   of open invoices are read page by page and applied as a backfill would (version = read
   time, so newer webhook data still wins). A stored subscription or open invoice that is
   not in those lists is fetched by id: that is how a missed cancellation or payment shows.
   An object counts as drifted when applying Stripe's copy changed one of its stored
   columns (or a subscription's items). Customers whose subscriptions were repaired get
   their MRR ledger brought in line, dated at the subscriptions' own times
   (handlers/sync/history.py).
3. The report (`handlers/sync/drift.py`) says how many objects drifted, of which kind, and
   the MRR before and after; `handlers/sync/jobs.py` posts it only when something was wrong.

`Reconciler.run` is a plain function of its dependencies; `handlers.sync.jobs.run_reconcile`
builds them from settings for the scheduled job and `billbot reconcile`.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import stripe
from sqlalchemy import Engine
from sqlmodel import Session, col, select

from handlers.stripe.events import parse_event
from handlers.stripe.registry import Change
from handlers.sync.backfill import (
    OBJECT_TYPES,
    PAGE_ATTEMPTS,
    RACE_ERRORS,
    ApplyObject,
    default_apply_object,
    version_for_read,
)
from handlers.sync.drift import DriftReport, drift_report_text
from handlers.sync.history import LedgerFeed, touched_subscriptions
from handlers.sync.pacing import Pacer
from storage import inbox
from storage.db import read_scope, session_scope
from storage.lanes import lane_of
from storage.models import Invoice, StripeEvent, Subscription, SubscriptionItem
from storage.models.sync import SyncCursor, SyncStatus
from storage.mrr import DEFAULT_POLICY, MRR_STATUSES, MrrPolicy, subscription_mrr
from storage.types import utcnow

logger = logging.getLogger(__name__)

EVENT_WINDOW = timedelta(days=30)  # how long Stripe keeps events
LIVE_SUBSCRIPTION_STATUSES = ("incomplete", "trialing", "active", "past_due", "unpaid", "paused")
NOT_COMPARED = {"raw", "version_at", "version_event_id", "updated_at"}
SOURCE = "reconcile"

RefeedEvent = Callable[[Session, dict[str, Any]], bool]

__all__ = ["DriftReport", "Reconciler", "drift_report_text", "insert_missed_event"]


def insert_missed_event(session: Session, event: dict[str, Any]) -> bool:
    """Put a missed event in the inbox for the worker; False if it is there already."""
    parsed = parse_event(event)
    owner, parent = parsed.lane_owner
    row = inbox.NewInboxEvent(
        id=parsed.id,
        type=parsed.type,
        api_version=parsed.api_version,
        livemode=parsed.livemode,
        created=parsed.created,
        object_id=parsed.object_id,
        payload=json.dumps(event, separators=(",", ":")),
        source=SOURCE,
        received_at=utcnow(),
        lane=lane_of(owner),
        lane_parent=parent,
    )
    return bool(inbox.insert_events(connection=session.connection(), events=[row]))


@dataclass
class Reconciler:
    engine: Engine
    client: stripe.StripeClient
    pacer: Pacer
    apply_object: ApplyObject | None = None
    refeed_event: RefeedEvent = insert_missed_event
    now: Callable[[], datetime] = utcnow
    policy: MrrPolicy = DEFAULT_POLICY
    feed_ledger: bool = True

    def run(self) -> DriftReport:
        apply = self.apply_object or default_apply_object()
        report = DriftReport(since=self._event_window_start(), read_at=self.now())
        report.mrr_before = self._mrr()
        self._refeed_missed_events(report)
        changes: list[Change] = []
        # Stripe's default subscription list: those not ended.
        self._recheck("subscriptions", apply, report, {}, _live_subscription, changes)
        self._recheck("invoices", apply, report, {"status": "open"}, _open_invoice, changes)
        if self.feed_ledger:
            now = self.now()
            report.ledger_lines = LedgerFeed(self.engine, self.policy).feed(
                touched_subscriptions(changes), read_at=now, now=now, everyone_new=False
            )
        report.mrr_after = self._mrr()
        logger.info(
            "reconcile.finished",
            extra={
                "missed_events": sum(report.missed_events.values()),
                "drifted": report.drift_count,
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
                        report.missed_event_ids.append(event["id"])

    # -- objects ---------------------------------------------------------------------------
    def _recheck(
        self,
        kind: str,
        apply: ApplyObject,
        report: DriftReport,
        params: dict[str, Any],
        wanted: Callable[[dict[str, Any]], bool],
        changes: list[Change],
    ) -> None:
        stored = self._stored_ids(kind)
        seen: set[str] = set()
        for objects, version_at in self._pages(
            getattr(self.client.v1, kind), {"limit": 100, **params}
        ):
            live = [obj for obj in objects if wanted(obj)]
            seen.update(obj["id"] for obj in live)
            changes += self._apply_and_compare(kind, apply, live, version_at, report)
        for object_id in sorted(stored - seen):
            fetched = self._retrieve(kind, object_id, report)
            if fetched is not None:
                changes += self._apply_and_compare(kind, apply, [fetched[0]], fetched[1], report)

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
    ) -> list[Change]:
        """Apply one page in one transaction (again, if it lost a race with the worker)."""
        for attempt in range(1, PAGE_ATTEMPTS + 1):
            try:
                with session_scope(self.engine) as session:
                    changes, drifted = self._apply_page(session, kind, apply, objects, version_at)
                break
            except RACE_ERRORS:
                if attempt == PAGE_ATTEMPTS:
                    raise
        if objects:
            report.checked[kind] += len(objects)
        for object_id in drifted:
            report.drifted.setdefault(kind, []).append(object_id)
            logger.info(
                "reconcile.object.drifted", extra={"object_type": kind, "object_id": object_id}
            )
        return changes

    @staticmethod
    def _apply_page(
        session: Session,
        kind: str,
        apply: ApplyObject,
        objects: list[dict[str, Any]],
        version_at: datetime,
    ) -> tuple[list[Change], list[str]]:
        changes: list[Change] = []
        drifted: list[str] = []
        for obj in objects:
            before = snapshot(session, kind, obj["id"])
            changes += apply(session, obj, version_at=version_at)
            session.flush()
            if snapshot(session, kind, obj["id"]) != before:
                drifted.append(obj["id"])
        return changes, drifted

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
        """MRR per currency over the store's subscriptions (two queries)."""
        totals: dict[str, Decimal] = {}
        with read_scope(self.engine) as session:
            counting = list(
                session.exec(select(Subscription).where(col(Subscription.status).in_(MRR_STATUSES)))
            )
            items: dict[str, list[SubscriptionItem]] = defaultdict(list)
            for item in session.exec(
                select(SubscriptionItem)
                .join(Subscription, col(Subscription.id) == col(SubscriptionItem.subscription_id))
                .where(col(Subscription.status).in_(MRR_STATUSES))
            ):
                items[item.subscription_id].append(item)
            for sub in counting:
                mrr = subscription_mrr(sub, items[sub.id], policy=self.policy)
                totals[sub.currency] = totals.get(sub.currency, Decimal(0)) + mrr
        return totals


def _live_subscription(obj: dict[str, Any]) -> bool:
    return obj.get("status") in LIVE_SUBSCRIPTION_STATUSES


def _open_invoice(obj: dict[str, Any]) -> bool:
    return obj.get("status") == "open"


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

"""The MRR ledger for history read from Stripe (backfill, CSV import, reconciliation).

Webhook events put a line in the ledger at the event's time. A backfill has no events, so
it dates what it learns from the objects themselves (docs/backfill.md, "The MRR ledger"):

- A customer the ledger has never seen gets their history rebuilt from every subscription
  the store holds for them. A subscription counts its value now (items, discounts, as the
  MRR policy says) from its start (`created`, or the end of its trial) until it stopped
  counting: the cancellation request (`canceled_at`) under `REVENUE_CHURN_AT=request`, else
  `ended_at`. The ledger gets a line at each moment the customer's sum changed, through
  the ledger's own `record_customer_mrr`, so the kinds are the ledger's (`new`, `churn`,
  `reactivation`, ...). A last line at the read brings the ledger to exactly what the
  store shows (what one object cannot tell, such as an earlier plan change or a pause).
- A customer the ledger already knows (webhooks came first) gets one catch-up line, dated
  at the latest moment the touched subscriptions show (start, trial end, cancellation,
  end) that is later than the customer's last ledger line, else at the read.

Nothing here posts to Slack.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session

from handlers.revenue.ledger import record_customer_mrr
from handlers.stripe.registry import Change
from storage import sync as queries
from storage.db import session_scope
from storage.models import Subscription, SubscriptionItem
from storage.mrr import DEFAULT_POLICY, MrrPolicy, is_cancellation_requested, subscription_mrr
from storage.revenue import StoreMrr

logger = logging.getLogger(__name__)

COUNTED_STATUSES = frozenset({"active", "past_due", "unpaid", "canceled"})
CHUNK = 100  # customers per transaction
ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class Span:
    """A subscription's value while it counted: from `start` until `end` (None: still)."""

    subscription_id: str
    currency: str
    start: datetime
    end: datetime | None
    value: Decimal  # exact minor units a month


@dataclass(frozen=True, slots=True)
class _Counting:
    """A subscription as it was while it counted: active, no cancellation requested."""

    discounts: list[dict[str, Any]]
    status: str = "active"
    cancel_at_period_end: bool = False
    cancel_at: datetime | None = None


def counted_span(
    sub: Subscription, items: Sequence[SubscriptionItem], *, policy: MrrPolicy = DEFAULT_POLICY
) -> Span | None:
    """When and how much `sub` counted for MRR, or None if it never did (incomplete,
    expired, still trialing, canceled during its trial, paused: a pause's time is unknown)."""
    if sub.status not in COUNTED_STATUSES or sub.created is None:
        return None
    start = max(sub.created, sub.trial_end) if sub.trial_end else sub.created
    end = _end(sub, policy)
    value = subscription_mrr(_Counting(sub.discounts or []), items, policy=policy)
    if value <= 0 or (end is not None and end <= start):
        return None
    return Span(sub.id, sub.currency, start, end, value)


def _end(sub: Subscription, policy: MrrPolicy) -> datetime | None:
    if sub.status == "canceled":
        if policy.churn_at == "request":
            return sub.canceled_at or sub.ended_at
        return sub.ended_at or sub.canceled_at
    if policy.churn_at == "request" and is_cancellation_requested(sub):
        return sub.canceled_at  # None: the request time is unknown; the read's line covers it
    return None


def mrr_steps(
    spans: Iterable[Span], *, until: datetime
) -> list[tuple[datetime, dict[str, Decimal]]]:
    """Pure: the MRR per currency right after each moment it changed, up to `until`."""
    spans = list(spans)
    moments = sorted(
        {m for span in spans for m in (span.start, span.end) if m is not None and m <= until}
    )
    steps = []
    for moment in moments:
        totals: dict[str, Decimal] = defaultdict(Decimal)
        for span in spans:
            if span.start <= moment and (span.end is None or moment < span.end):
                totals[span.currency] += span.value
        steps.append((moment, dict(totals)))
    return steps


def lifecycle_moments(sub: Subscription) -> list[datetime]:
    """The moments a subscription object itself dates: start, trial end, cancellation, end."""
    return [m for m in (sub.created, sub.trial_end, sub.canceled_at, sub.ended_at) if m]


def touched_subscriptions(changes: Iterable[Change]) -> dict[str, set[str]]:
    """customer id -> ids of the subscriptions whose stored data these changes rewrote."""
    touched: dict[str, set[str]] = defaultdict(set)
    for change in changes:
        if change.object_type == "subscription" and change.applied and change.customer_id:
            touched[change.customer_id].add(change.object_id)
    return touched


@dataclass
class LedgerFeed:
    """Brings the ledger in line after subscriptions were read from Stripe."""

    engine: Engine
    policy: MrrPolicy = DEFAULT_POLICY

    def feed(
        self,
        touched: dict[str, set[str]],
        *,
        read_at: datetime,
        now: datetime,
        everyone_new: bool = True,
    ) -> int:
        """Record `touched` customers (and, with `everyone_new`, every customer the ledger
        has never seen). Returns the number of ledger lines written."""
        customers = dict(touched)
        if everyone_new:
            with session_scope(self.engine) as session:
                for customer_id in queries.customers_unknown_to_ledger(session=session):
                    customers.setdefault(customer_id, set())
        ids = sorted(customers)
        written = 0
        for first in range(0, len(ids), CHUNK):
            written += self._chunk(ids[first : first + CHUNK], customers, read_at=read_at, now=now)
        if written:
            logger.info("sync.ledger.fed", extra={"customers": len(ids), "lines": written})
        return written

    def _chunk(
        self, ids: list[str], customers: dict[str, set[str]], *, read_at: datetime, now: datetime
    ) -> int:
        """One transaction for a few customers; again if it lost a race (a deadlock)."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                with session_scope(self.engine) as session:
                    return sum(
                        self._one(session, c, customers[c], read_at=read_at, now=now) for c in ids
                    )
            except OperationalError:
                if attempt == ATTEMPTS:
                    raise
        return 0

    def _one(
        self,
        session: Session,
        customer_id: str,
        touched: set[str],
        *,
        read_at: datetime,
        now: datetime,
    ) -> int:
        # A webhook's ledger line for the same customer may commit first (both insert the
        # customer's first `customer_mrr` row); then the customer is known: try once more.
        for attempt in (1, 2):
            try:
                with session.begin_nested():
                    return self.record_customer(
                        session, customer_id, touched, read_at=read_at, now=now
                    )
            except IntegrityError:
                if attempt == 2:
                    raise
        return 0

    def record_customer(
        self,
        session: Session,
        customer_id: str,
        touched: set[str],
        *,
        read_at: datetime,
        now: datetime,
    ) -> int:
        subscriptions = queries.subscriptions_with_items(session=session, customer_id=customer_id)
        if not queries.ledger_knows(session=session, customer_id=customer_id):
            return self._rebuild(session, customer_id, subscriptions, read_at=read_at, now=now)
        last = queries.last_ledger_line_at(session=session, customer_id=customer_id)
        moments = [
            moment
            for sub, _ in subscriptions
            if sub.id in touched
            for moment in lifecycle_moments(sub)
            if moment <= now and (last is None or moment > last)
        ]
        at = max(moments, default=read_at)
        lines = record_customer_mrr(
            session, customer_id=customer_id, at=at, event_id=_sync_id(read_at), policy=self.policy
        )
        return len(lines)

    def _rebuild(
        self,
        session: Session,
        customer_id: str,
        subscriptions: list[tuple[Subscription, list[SubscriptionItem]]],
        *,
        read_at: datetime,
        now: datetime,
    ) -> int:
        spans = [counted_span(sub, items, policy=self.policy) for sub, items in subscriptions]
        written = 0
        for moment, totals in mrr_steps([s for s in spans if s], until=min(now, read_at)):
            written += len(
                record_customer_mrr(
                    session,
                    customer_id=customer_id,
                    at=moment,
                    event_id=f"backfill:{int(moment.timestamp())}",
                    policy=self.policy,
                    mrr={currency: StoreMrr(mrr=value) for currency, value in totals.items()},
                )
            )
        written += len(
            record_customer_mrr(
                session,
                customer_id=customer_id,
                at=read_at,
                event_id=_sync_id(read_at),
                policy=self.policy,
            )
        )
        return written


def _sync_id(read_at: datetime) -> str:
    return f"sync:{int(read_at.timestamp())}"

"""Monthly recurring revenue of one subscription, computed exactly.

Definitions follow Stripe's Billing analytics (docs/metrics.md): only subscriptions in
`active` or `past_due` count; trials, metered items and free plans add nothing; each
licensed item's price × quantity is normalised to a month (year ÷ 12, week × 52/12,
day × 365/12, each ÷ interval_count); tiered prices follow Stripe's graduated and volume
rules; only `forever` discounts reduce MRR. The result is an exact Decimal in minor units:
round once, when it is shown (`storage.money.format_money`).

Two choices Stripe's Billing analytics also leaves to the account are an `MrrPolicy`
(settings `REVENUE_CHURN_AT`, `REVENUE_DISCOUNTS`): whether a scheduled cancellation
stops counting when it is requested (the default) or when the period ends, and which
discount durations reduce MRR (default: `forever` only).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

MRR_STATUSES = frozenset({"active", "past_due"})
PAUSED_STATUS = "paused"
DISCOUNT_DURATIONS = frozenset({"forever", "repeating", "once"})

MONTHS_PER_INTERVAL = {
    "month": Decimal(1),
    "year": Decimal(12),
    "week": Decimal(12) / Decimal(52),
    "day": Decimal(12) / Decimal(365),
}
ZERO = Decimal(0)


class PricedItem(Protocol):
    unit_amount: int | None
    unit_amount_decimal: str | None
    billing_scheme: str
    tiers_mode: str | None
    tiers: list[dict[str, Any]] | None
    interval: str
    interval_count: int
    usage_type: str
    quantity: int


class BillableSubscription(Protocol):
    status: str
    discounts: list[dict[str, Any]]
    cancel_at_period_end: bool
    cancel_at: datetime | None


@dataclass(frozen=True, slots=True)
class MrrPolicy:
    """The account-level choices behind every MRR figure (docs/metrics.md)."""

    churn_at: Literal["request", "period_end"] = "request"
    discount_durations: frozenset[str] = frozenset({"forever"})

    def __post_init__(self) -> None:
        if self.churn_at not in ("request", "period_end"):
            raise ValueError(f"churn_at must be 'request' or 'period_end', not {self.churn_at!r}")
        unknown = set(self.discount_durations) - DISCOUNT_DURATIONS
        if unknown:
            raise ValueError(f"unknown discount durations: {', '.join(sorted(unknown))}")


DEFAULT_POLICY = MrrPolicy()


def item_amount_per_interval(item: PricedItem) -> Decimal:
    """What the item bills each interval, before discounts, in minor units."""
    if item.usage_type != "licensed":
        return ZERO
    quantity = max(item.quantity or 0, 0)
    if item.billing_scheme == "tiered" and item.tiers:
        return _tiered_amount(item.tiers, item.tiers_mode or "graduated", quantity)
    if item.unit_amount_decimal is not None:
        unit = Decimal(item.unit_amount_decimal)
    elif item.unit_amount is not None:
        unit = Decimal(item.unit_amount)
    else:
        return ZERO
    return unit * quantity


def monthly(amount: Decimal, interval: str, interval_count: int) -> Decimal:
    months = MONTHS_PER_INTERVAL.get(interval)
    if months is None or interval_count <= 0:
        return ZERO
    # Divide once, at the end, to keep week and day exact to Decimal precision.
    if interval == "week":
        return amount * 52 / (12 * interval_count)
    if interval == "day":
        return amount * 365 / (12 * interval_count)
    return amount / (months * interval_count)


def item_mrr(item: PricedItem) -> Decimal:
    return monthly(item_amount_per_interval(item), item.interval, item.interval_count)


def subscription_mrr(
    subscription: BillableSubscription,
    items: Iterable[PricedItem],
    *,
    policy: MrrPolicy = DEFAULT_POLICY,
) -> Decimal:
    """Exact MRR in minor units of the subscription's currency; zero unless it counts."""
    if subscription.status not in MRR_STATUSES:
        return ZERO
    return recurring_value(subscription, items, policy=policy)


def paused_mrr(
    subscription: BillableSubscription,
    items: Iterable[PricedItem],
    *,
    policy: MrrPolicy = DEFAULT_POLICY,
) -> Decimal:
    """What a `paused` subscription would count if it resumed; zero for every other status.
    Reported on its own line: a pause is neither MRR nor churn."""
    if subscription.status != PAUSED_STATUS:
        return ZERO
    return recurring_value(subscription, items, policy=policy)


def is_cancellation_requested(subscription: BillableSubscription) -> bool:
    """A cancellation is scheduled: at the period's end, or at a set date."""
    return bool(subscription.cancel_at_period_end) or subscription.cancel_at is not None


def recurring_value(
    subscription: BillableSubscription,
    items: Iterable[PricedItem],
    *,
    policy: MrrPolicy = DEFAULT_POLICY,
) -> Decimal:
    """The monthly value of the subscription's licensed items after the discounts the policy
    counts, whatever its status; zero once a cancellation is requested (policy `request`)."""
    if policy.churn_at == "request" and is_cancellation_requested(subscription):
        return ZERO
    items = list(items)
    gross = sum((item_mrr(item) for item in items), ZERO)
    if gross <= 0:
        return ZERO
    return _apply_discounts(gross, subscription.discounts or [], items, policy.discount_durations)


def _apply_discounts(
    gross: Decimal,
    discounts: list[dict[str, Any]],
    items: list[PricedItem],
    durations: frozenset[str],
) -> Decimal:
    net = gross
    for discount in discounts:
        if discount.get("duration") not in durations:
            continue
        percent = discount.get("percent_off")
        amount_off = discount.get("amount_off")
        if percent is not None:
            net -= net * Decimal(str(percent)) / 100
        elif amount_off:
            interval, count = _billing_interval(items)
            net -= monthly(Decimal(int(amount_off)), interval, count)
    return max(net, ZERO)


def _billing_interval(items: list[PricedItem]) -> tuple[str, int]:
    licensed = [item for item in items if item.usage_type == "licensed"] or items
    return (licensed[0].interval, licensed[0].interval_count) if licensed else ("month", 1)


def _tiered_amount(tiers: list[dict[str, Any]], mode: str, quantity: int) -> Decimal:
    def unit(tier: dict[str, Any]) -> Decimal:
        if tier.get("unit_amount_decimal") is not None:
            return Decimal(str(tier["unit_amount_decimal"]))
        return Decimal(tier.get("unit_amount") or 0)

    def flat(tier: dict[str, Any]) -> Decimal:
        if tier.get("flat_amount_decimal") is not None:
            return Decimal(str(tier["flat_amount_decimal"]))
        return Decimal(tier.get("flat_amount") or 0)

    ordered = sorted(
        tiers, key=lambda t: float("inf") if t.get("up_to") in (None, "inf") else t["up_to"]
    )
    if mode == "volume":
        for tier in ordered:
            up_to = tier.get("up_to")
            if up_to in (None, "inf") or quantity <= up_to:
                return unit(tier) * quantity + flat(tier)
        return ZERO
    total, lower = ZERO, 0
    for tier in ordered:
        if quantity <= lower:
            break
        up_to = tier.get("up_to")
        upper = quantity if up_to in (None, "inf") else min(quantity, up_to)
        total += unit(tier) * (upper - lower) + flat(tier)
        lower = upper
    return total

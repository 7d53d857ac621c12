"""The revenue report for one calendar month (UTC), built from the MRR ledger alone.

Every figure is reproducible for any past month: MRR at a moment is the sum of the ledger
lines before it, and the movements are the lines inside the month. Amounts stay exact
Decimals in minor units of the reporting currency; they are rounded when shown.
Definitions and formulas: docs/metrics.md.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from sqlmodel import Session

from bot.settings import Settings
from handlers.revenue.fx import FxRates, load_fx_rates
from storage.models.ledger import MOVEMENTS, MovementKind, from_ledger_units
from storage.money import round_minor
from storage.revenue import (
    LedgerLine,
    active_customers_at,
    balances_at,
    ledger_lines_between,
    mrr_by_currency_at,
    mrr_change_by_currency,
)

ZERO = Decimal(0)
TOP_MOVEMENTS = 5

FORMULAS = {
    "mrr": "MRR = sum of active and past_due subscriptions' licensed items, normalised to a month",
    "arpu": "ARPU = MRR ÷ active paying customers",
    "churn_rate": "Churn rate = churned customers ÷ (active customers at start + new customers)",
    "ltv": "LTV = ARPU ÷ churn rate",
    "nrr": "NRR = (start MRR + expansion − contraction − churn) ÷ start MRR, for customers paying at the start",
    "fx": "FX = change in MRR from exchange rates alone (not a movement)",
}
NO_CHURN_NOTE = "LTV is undefined: no customer churned in this period."
NO_START_NOTE = "NRR is undefined: no MRR at the start of the period."
NO_CUSTOMERS_NOTE = "ARPU is undefined: no active paying customers."
MISSING_RATE_NOTE = "No exchange rate to {reporting} for {currencies}: left out of every figure."

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


class InvalidPeriod(ValueError):
    """The period is not `this month`, `last month` or YYYY-MM, or lies in the future."""


@dataclass(frozen=True, slots=True)
class MovementTotal:
    amount: Decimal = ZERO  # minor units of the reporting currency, signed
    count: int = 0


@dataclass(frozen=True, slots=True)
class TopMovement:
    customer_id: str
    customer_name: str | None
    kind: str
    amount: Decimal  # reporting currency, minor units
    original_amount: Decimal  # the customer's own currency, minor units
    currency: str
    occurred_at: datetime
    event_id: str


@dataclass(frozen=True, slots=True)
class RevenueReport:
    period: str  # YYYY-MM
    start: datetime
    end: datetime  # exclusive; `now` while the month is still running
    complete: bool
    currency: str
    mrr: Decimal
    start_mrr: Decimal
    active_customers: int
    start_customers: int
    arpu: Decimal | None
    movements: dict[str, MovementTotal]
    paused: MovementTotal
    resumed: MovementTotal
    fx: Decimal
    new_customers: int
    churned_customers: int
    churn_rate: Decimal | None
    ltv: Decimal | None
    nrr: Decimal | None
    top_movements: list[TopMovement] = field(default_factory=list)
    excluded_currencies: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    formulas: dict[str, str] = field(default_factory=lambda: dict(FORMULAS))


def resolve_period(period: str | None, *, now: datetime) -> tuple[str, datetime, datetime, bool]:
    """`None`/"this month", "last month" or "YYYY-MM" to (label, start, end, complete)."""
    text = (period or "").strip().lower()
    this_month = datetime(now.year, now.month, 1, tzinfo=UTC)
    if text in ("", "this month", "this"):
        start = this_month
    elif text in ("last month", "last"):
        start = _add_months(this_month, -1)
    else:
        match = _MONTH.match(text)
        if not match or not 1 <= int(match.group(2)) <= 12:
            raise InvalidPeriod(
                f"{period!r} is not a month: use YYYY-MM, 'this month' or 'last month'"
            )
        start = datetime(int(match.group(1)), int(match.group(2)), 1, tzinfo=UTC)
        if start > now:
            raise InvalidPeriod(f"{period} has not started yet")
    next_start = _add_months(start, 1)
    return start.strftime("%Y-%m"), start, min(next_start, now), next_start <= now


def revenue_report(
    session: Session, *, period: str | None, now: datetime, settings: Settings
) -> RevenueReport:
    label, start, end, complete = resolve_period(period, now=now)
    rates = load_fx_rates(settings)
    start_totals = mrr_by_currency_at(session, at=start)
    end_totals = mrr_by_currency_at(session, at=end)
    lines = ledger_lines_between(session, start=start, end=end)
    currencies = set(start_totals) | set(end_totals) | {line.currency for line in lines}
    excluded = tuple(
        sorted(c for c in currencies if rates.rate(c, start) is None or rates.rate(c, end) is None)
    )
    included = sorted(currencies - set(excluded))
    lines = [line for line in lines if line.currency in included]
    converted = [(line, _convert(rates, line.amount, line.currency, end)) for line in lines]
    start_mrr = _sum_converted(start_totals, included, rates, start)
    mrr = _sum_converted(end_totals, included, rates, end)
    start_customers = _active(session, start, included)
    active_customers = _active(session, end, included)
    totals = _totals(converted)
    new_customers = len({line.customer_id for line in lines if line.kind == MovementKind.NEW})
    churned = len({line.customer_id for line in lines if line.kind == MovementKind.CHURN})
    arpu = mrr / active_customers if active_customers else None
    churn_rate = _ratio(Decimal(churned), Decimal(start_customers + new_customers))
    ltv = arpu / churn_rate if arpu is not None and churn_rate else None
    cohort = _paying_at(session, start, {line.customer_id for line in lines}, included)
    nrr = _nrr(_sum_converted(start_totals, included, rates, end), cohort, converted)
    return RevenueReport(
        period=label,
        start=start,
        end=end,
        complete=complete,
        currency=settings.reporting_currency,
        mrr=mrr,
        start_mrr=start_mrr,
        active_customers=active_customers,
        start_customers=start_customers,
        arpu=arpu,
        movements={kind.value: totals[kind] for kind in MOVEMENTS},
        paused=totals[MovementKind.PAUSED],
        resumed=totals[MovementKind.RESUMED],
        fx=mrr - start_mrr - sum((amount or ZERO for _, amount in converted), ZERO),
        new_customers=new_customers,
        churned_customers=churned,
        churn_rate=churn_rate,
        ltv=ltv,
        nrr=nrr,
        top_movements=_top(converted),
        excluded_currencies=excluded,
        notes=_notes(arpu, churn_rate, nrr, excluded, settings.reporting_currency),
    )


@dataclass(frozen=True, slots=True)
class MrrSeries:
    """MRR at the end of each month, for the chart; the last point is `now`."""

    currency: str
    points: list[tuple[datetime, Decimal]]
    excluded_currencies: tuple[str, ...] = ()


def mrr_series(
    session: Session, *, now: datetime, settings: Settings, months: int = 12
) -> MrrSeries:
    """One pass over the ledger: the total before the first point, then each interval's net."""
    rates = load_fx_rates(settings)
    this_month = datetime(now.year, now.month, 1, tzinfo=UTC)
    # The ends of the previous `months - 1` months (each the first instant of the next), then now.
    moments = [_add_months(this_month, -offset) for offset in range(months - 2, -1, -1)] + [now]
    running = mrr_by_currency_at(session, at=moments[0])
    points, excluded = [], set()
    for previous, at in zip([moments[0], *moments], moments, strict=False):
        for currency, units in mrr_change_by_currency(session, start=previous, end=at).items():
            running[currency] = running.get(currency, 0) + units
        total = ZERO
        for currency, units in running.items():
            value = _convert(rates, units, currency, at)
            if value is None:
                excluded.add(currency)
            else:
                total += value
        points.append((at, total))
    return MrrSeries(settings.reporting_currency, points, tuple(sorted(excluded)))


def report_as_json(report: RevenueReport) -> dict[str, object]:
    """The `billbot revenue --json` shape: minor units (rounded once, here) and fractions."""
    return {
        "currency": report.currency,
        "mrr": _minor(report.mrr),
        "arpu": _minor(report.arpu),
        "ltv": _minor(report.ltv),
        "active_customers": report.active_customers,
        "movements": {
            kind: {"amount": _minor(total.amount), "count": total.count}
            for kind, total in report.movements.items()
        },
        "churn_rate": _fraction(report.churn_rate),
        "nrr": _fraction(report.nrr),
        "period": report.period,
    }


def _sum_converted(
    totals: dict[str, int], included: list[str], rates: FxRates, at: datetime
) -> Decimal:
    return sum((_convert(rates, totals[c], c, at) or ZERO for c in included if c in totals), ZERO)


def _active(session: Session, at: datetime, included: list[str]) -> int:
    return active_customers_at(session, at=at, currencies=included) if included else 0


def _paying_at(
    session: Session, at: datetime, customers: set[str], included: list[str]
) -> set[str]:
    """Which of `customers` had MRR > 0 (in an included currency) at `at`: the NRR cohort."""
    balances = balances_at(session, at=at, customer_ids=customers)
    return {customer for (customer, c), units in balances.items() if units > 0 and c in included}


def _totals(converted: Iterable[tuple[LedgerLine, Decimal | None]]) -> dict[str, MovementTotal]:
    amounts: dict[str, Decimal] = defaultdict(Decimal)
    counts: dict[str, int] = defaultdict(int)
    for line, amount in converted:
        amounts[line.kind] += amount or ZERO
        counts[line.kind] += 1
    return {kind.value: MovementTotal(amounts[kind], counts[kind]) for kind in MovementKind}


def _nrr(
    start_mrr: Decimal, cohort: set[str], converted: list[tuple[LedgerLine, Decimal | None]]
) -> Decimal | None:
    """`start_mrr` and the movements at the period-end rates (constant currency), so
    currency moves are not read as retention; only the start cohort's movements count."""
    kinds = (MovementKind.EXPANSION, MovementKind.CONTRACTION, MovementKind.CHURN)
    moved = sum(
        (a or ZERO for line, a in converted if line.customer_id in cohort and line.kind in kinds),
        ZERO,
    )
    return _ratio(start_mrr + moved, start_mrr)


def _top(converted: list[tuple[LedgerLine, Decimal | None]]) -> list[TopMovement]:
    movements = [
        (line, amount)
        for line, amount in converted
        if line.kind in MOVEMENTS and amount is not None
    ]
    movements.sort(key=lambda pair: (-abs(pair[1]), pair[0].occurred_at, pair[0].id))
    return [
        TopMovement(
            customer_id=line.customer_id,
            customer_name=line.customer_name,
            kind=line.kind,
            amount=amount,
            original_amount=from_ledger_units(line.amount),
            currency=line.currency,
            occurred_at=line.occurred_at,
            event_id=line.event_id,
        )
        for line, amount in movements[:TOP_MOVEMENTS]
    ]


def _notes(
    arpu: Decimal | None,
    churn_rate: Decimal | None,
    nrr: Decimal | None,
    excluded: tuple[str, ...],
    reporting: str,
) -> tuple[str, ...]:
    notes = []
    if excluded:
        notes.append(
            MISSING_RATE_NOTE.format(
                reporting=reporting.upper(), currencies=", ".join(c.upper() for c in excluded)
            )
        )
    if arpu is None:
        notes.append(NO_CUSTOMERS_NOTE)
    if not churn_rate:
        notes.append(NO_CHURN_NOTE)
    if nrr is None:
        notes.append(NO_START_NOTE)
    return tuple(notes)


def _convert(rates: FxRates, units: int, currency: str, at: datetime) -> Decimal | None:
    return rates.convert(from_ledger_units(units), currency, at)


def _ratio(numerator: Decimal, denominator: Decimal) -> Decimal | None:
    return numerator / denominator if denominator else None


def _minor(amount: Decimal | None) -> int | None:
    return None if amount is None else round_minor(amount)


def _fraction(value: Decimal | None) -> float | None:
    return None if value is None else float(round(value, 4))


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    return moment.replace(year=index // 12, month=index % 12 + 1, day=1)

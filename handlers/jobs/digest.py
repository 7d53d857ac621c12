"""The revenue digest: a daily or weekly summary to `SLACK_CHANNEL_DIGEST`.

The period is whole local days (`BILLBOT_TIMEZONE`): daily covers yesterday; weekly covers the
seven days before the latest `DIGEST_WEEKDAY`. The posted key is `digest:{frequency}:{first
day}`, so a digest goes out once per period however often the job runs.

The weekly digest carries the MRR chart. Slack files cannot go through the outbox (it sends
chat messages), so the chart is uploaded here, just before the summary is queued, guarded by
its own key `…:chart` recorded before the upload (at most once; a refused upload forgets the
key so a later run may try again).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlmodel import Session

from bot.settings import Settings
from handlers.alerts.facts import mrr_minor, subscription_items
from handlers.alerts.routing import CONSOLE_CHANNEL
from handlers.jobs import Hook, JobResult, post_once
from handlers.revenue.chart import mrr_chart_png
from handlers.revenue.fx import FxRates, load_fx_rates
from handlers.revenue.report import mrr_series
from handlers.revenue.upload import ChartUploadError, upload_chart
from handlers.slack.job_blocks import DigestFigures, digest_message
from storage.db import read_scope, session_scope
from storage.jobs import forget_posted, posted_keys, record_posted
from storage.models.ledger import MOVEMENTS, from_ledger_units
from storage.money import format_money
from storage.reminders import (
    CONVERTED_STATUSES,
    open_failed_payments,
    recovered_payments,
    trials_ended,
    trials_ending,
)
from storage.revenue import (
    active_customers_at,
    ledger_lines_between,
    mrr_by_currency_at,
)

logger = logging.getLogger(__name__)
JOB = "digest"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
TOP = 3
SOON = timedelta(days=7)
CHART_TITLE = "MRR, last 12 months (to {label})"
CHART_ALT = "Line chart of MRR in {currency} at the end of each of the last 12 months; now {mrr}."


@dataclass(frozen=True, slots=True)
class DigestPeriod:
    frequency: str
    start: datetime  # local, aware
    end: datetime  # local, aware, exclusive
    label: str

    @property
    def key(self) -> str:
        return f"digest:{self.frequency}:{self.start.date().isoformat()}"


def digest_period(now: datetime, settings: Settings) -> DigestPeriod:
    """The latest complete period at `now`: whole local days, DST-safe."""
    zone = settings.timezone
    end_day = now.astimezone(zone).date()
    days = 1
    if settings.digest_frequency == "weekly":
        days = 7
        end_day -= timedelta(days=(end_day.weekday() - WEEKDAYS.index(settings.digest_weekday)) % 7)
    start_day = end_day - timedelta(days=days)
    label = f"{start_day:%a, %b %-d}" if days == 1 else f"{start_day:%b %-d, %Y}"
    return DigestPeriod(
        frequency=settings.digest_frequency,
        start=datetime.combine(start_day, time(0), tzinfo=zone),
        end=datetime.combine(end_day, time(0), tzinfo=zone),
        label=label,
    )


def digest_figures(
    session: Session, *, period: DigestPeriod, settings: Settings, now: datetime
) -> DigestFigures:
    rates = load_fx_rates(settings)
    start, end = period.start, period.end
    start_totals = mrr_by_currency_at(session, at=start)
    end_totals = mrr_by_currency_at(session, at=end)
    lines = ledger_lines_between(session, start=start, end=end)
    currencies = set(start_totals) | set(end_totals) | {line.currency for line in lines}
    excluded = sorted(c for c in currencies if None in (rates.rate(c, start), rates.rate(c, end)))
    included = sorted(currencies - set(excluded))
    movements: dict[str, tuple[Decimal, int]] = {}
    top: list[tuple[str, str, Decimal]] = []
    for line in lines:
        amount = _convert(rates, line.amount, line.currency, end)
        if line.kind not in MOVEMENTS or amount is None:
            continue
        total, count = movements.get(line.kind, (Decimal(0), 0))
        movements[line.kind] = (total + amount, count + 1)
        top.append((line.customer_name or line.customer_id, line.kind, amount))
    top.sort(key=lambda entry: -abs(entry[2]))
    converted, lost = _trial_outcomes(session, start=start, end=end)
    return DigestFigures(
        frequency=period.frequency,
        label=period.label,
        start=start,
        end=end,
        zone=settings.billbot_timezone,
        currency=settings.reporting_currency,
        mrr=_total(rates, end_totals, included, end),
        start_mrr=_total(rates, start_totals, included, start),
        active_customers=active_customers_at(session, at=end, currencies=included)
        if included
        else 0,
        movements=movements,
        top=top[:TOP],
        failed_open=open_failed_payments(session=session),
        recovered=recovered_payments(session=session, start=start, end=end),
        trials_converted=converted,
        trials_lost=lost,
        trials_ending_soon=len(trials_ending(session=session, start=now, end=now + SOON)),
        excluded_currencies=tuple(excluded),
    )


def send_digest(
    *,
    engine: Engine,
    settings: Settings,
    now: datetime,
    slack: WebClient | None = None,
    after_enqueue: Hook | None = None,
) -> JobResult:
    """Post the digest for the latest complete period, once. `slack` uploads the weekly chart
    (None: console mode, the chart is left out)."""
    result = JobResult(JOB)
    channel = settings.slack_channel_digest or (
        CONSOLE_CHANNEL if not settings.slack_enabled else None
    )
    if channel is None:
        result.notes.append("no channel: set SLACK_CHANNEL_DIGEST")
        return result
    period = digest_period(now, settings)
    with read_scope(engine) as session:
        if posted_keys(session=session, keys=[period.key]):
            result.skipped.append(f"{period.key} was already posted")
            return result
        figures = digest_figures(session, period=period, settings=settings, now=now)
        png = _chart(session, period, settings) if period.frequency == "weekly" else None
    if png is not None:
        figures = replace(
            figures,
            chart_above=_upload_once(engine, slack, channel, period, png, figures, result, now),
        )
    posted = post_once(
        engine=engine,
        job=JOB,
        items=[(period.key, figures)],
        build=lambda chosen: digest_message(chosen[0]),
        channel=channel,
        now=now,
        after_enqueue=after_enqueue,
    )
    if posted:
        result.posted.append(f"{period.key} to {channel}")
    else:
        result.skipped.append(f"{period.key} was already posted")
    return result


def _chart(session: Session, period: DigestPeriod, settings: Settings) -> bytes:
    series = mrr_series(session, now=period.end.astimezone(UTC), settings=settings)
    return mrr_chart_png(
        series.points, series.currency, title=CHART_TITLE.format(label=period.label)
    )


def _upload_once(
    engine: Engine,
    slack: WebClient | None,
    channel: str,
    period: DigestPeriod,
    png: bytes,
    figures: DigestFigures,
    result: JobResult,
    now: datetime,
) -> bool:
    """Upload the chart unless an earlier run did; True when it is in the channel."""
    key = f"{period.key}:chart"
    if slack is None:
        result.notes.append(f"chart not uploaded (console mode, {len(png)} bytes)")
        return False
    with session_scope(engine) as session:
        if not record_posted(session=session, key=key, job=JOB, now=now):
            return True
    alt = CHART_ALT.format(
        currency=figures.currency.upper(), mrr=format_money(figures.mrr, figures.currency)
    )
    try:
        upload_chart(
            slack,
            channel=channel,
            png=png,
            title=CHART_TITLE.format(label=period.label),
            alt_text=alt,
        )
    except (SlackApiError, ChartUploadError, OSError) as exc:
        with session_scope(engine) as session:
            forget_posted(session=session, key=key)
        result.fail("chart", exc)
        return False
    result.posted.append(f"{key} to {channel}")
    return True


def _trial_outcomes(
    session: Session, *, start: datetime, end: datetime
) -> tuple[dict[str, tuple[int, int]], int]:
    """Trials that ended in the period: converted (currency -> count, MRR), and lost."""
    converted: dict[str, tuple[int, int]] = {}
    lost = 0
    for subscription in trials_ended(session=session, start=start, end=end):
        if subscription.status not in CONVERTED_STATUSES:
            lost += 1
            continue
        mrr = mrr_minor(subscription, subscription_items(session, subscription.id))
        count, total = converted.get(subscription.currency, (0, 0))
        converted[subscription.currency] = (count + 1, total + mrr)
    return dict(sorted(converted.items())), lost


def _convert(rates: FxRates, units: int, currency: str, at: datetime) -> Decimal | None:
    return rates.convert(from_ledger_units(units), currency, at)


def _total(rates: FxRates, totals: dict[str, int], included: list[str], at: datetime) -> Decimal:
    return sum(
        (_convert(rates, totals[c], c, at) or Decimal(0) for c in included if c in totals),
        Decimal(0),
    )

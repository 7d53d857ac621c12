"""`/revenue [this month | last month | YYYY-MM]`: the month's summary and the MRR chart,
posted in the channel where the command was run.

The acknowledgement checks only what needs no database (the period, whether billbot may
post here), so it is immediate. The report, the chart and its upload run in a lazy
listener after it, and the summary goes out through the request's `response_url`: the
chart takes a few hundred milliseconds to render and Slack's upload is three calls.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlmodel import Session

from bot.settings import Settings
from handlers.revenue.blocks import chart_alt_text, revenue_summary_blocks
from handlers.revenue.chart import mrr_chart_png
from handlers.revenue.report import (
    InvalidPeriod,
    MrrSeries,
    RevenueReport,
    mrr_series,
    resolve_period,
    revenue_report,
)
from handlers.revenue.upload import ChartUploadError, upload_chart
from handlers.slack import command_copy as words
from handlers.slack.access import AccessPolicy
from handlers.slack.command_ids import Command
from handlers.slack.commands import Reply, UserFacingError, answering
from handlers.slack.deps import SlackDeps
from storage.db import read_scope

logger = logging.getLogger(__name__)


def period_of(text: str | None, *, now: datetime) -> str | None:
    """The period as `revenue_report` takes it; raises UserFacingError with the usage."""
    period = " ".join((text or "").split()) or None
    try:
        resolve_period(period, now=now)
    except InvalidPeriod as exc:
        raise UserFacingError(
            f"{words.REVENUE_BAD_PERIOD.format(reason=exc)} {words.REVENUE_USAGE}"
        ) from exc
    return period


def revenue_figures(
    session: Session, *, period: str | None, now: datetime, settings: Settings
) -> tuple[RevenueReport, MrrSeries]:
    """The report and the twelve month-ends that end with it. An unreadable FX_RATES_FILE is
    an operator's problem, not the asker's: it takes the unexpected-error path."""
    report = revenue_report(session, period=period, now=now, settings=settings)
    if not report.complete:
        return report, mrr_series(session, now=now, settings=settings)
    # A whole month ends at the next month's first instant, which mrr_series also counts
    # as a month end: ask for one month more and drop the repeated last point.
    series = mrr_series(session, now=report.end, settings=settings, months=13)
    return report, MrrSeries(series.currency, series.points[:-1], series.excluded_currencies)


def chart_png(report: RevenueReport, series: MrrSeries) -> bytes:
    footnote = None
    if series.excluded_currencies:
        codes = ", ".join(code.upper() for code in series.excluded_currencies)
        footnote = f"No exchange rate for {codes}: left out."
    return mrr_chart_png(series.points, series.currency, footnote=footnote)


def register(app: App, deps: SlackDeps) -> None:
    policy = AccessPolicy.from_settings(deps.settings)

    def refusal(body: dict[str, Any]) -> str | None:
        """Why billbot will not answer this one (a bad period, a channel it may not post
        in), decided without the database; None when it will."""
        try:
            period_of(body.get("text"), now=deps.clock())
        except UserFacingError as error:
            return str(error)
        if not policy.may_post_in(body.get("channel_id")):
            return words.POST_NOT_HERE.format(channels=policy.channel_list())
        return None

    def acknowledge(ack: Ack, body: dict[str, Any]) -> None:
        ack(text=refusal(body) or "")

    def answer(body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        if refusal(body) is not None:
            return  # the acknowledgement said why
        reply = Reply.to(body, client, respond)
        with answering(reply, what="revenue"):
            now = deps.clock()
            with read_scope(deps.engine) as session:
                report, series = revenue_figures(
                    session,
                    period=period_of(body.get("text"), now=now),
                    now=now,
                    settings=deps.settings,
                )
            blocks = revenue_summary_blocks(report)
            reply.public(blocks[0]["text"]["text"], blocks)
            share_chart(reply, report, series)

    def share_chart(reply: Reply, report: RevenueReport, series: MrrSeries) -> None:
        title = words.REVENUE_CHART_TITLE.format(currency=series.currency.upper())
        try:
            upload_chart(
                reply.client,
                channel=reply.channel_id or reply.user_id,
                png=chart_png(report, series),
                title=title,
                alt_text=chart_alt_text(report),
                filename=f"mrr-{report.period}.png",
            )
        except (SlackApiError, ChartUploadError) as exc:
            error = exc.response.get("error") if isinstance(exc, SlackApiError) else "upload failed"
            logger.warning("slack.revenue.chart_failed", extra={"error": error})
            reply.private(words.REVENUE_CHART_FAILED.format(error=error))

    app.command(Command.REVENUE.value)(ack=acknowledge, lazy=[answer])

"""Block Kit for the revenue summary (`/revenue`, the digest): pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal
from typing import Any

from handlers.revenue.report import RevenueReport, TopMovement
from handlers.revenue.text import LABELS
from storage.money import format_money

HEADER = "Revenue · {period}"
RUNNING = "Month to date, as of <!date^{ts}^{{date_short}} {{time}}|{fallback}>"
COMPLETE = "Whole month, {start:%b %-d} to {last:%b %-d, %Y} (UTC)"
UNDEFINED = "undefined"
CHART_ALT = "Line chart of MRR in {currency} at the end of each of the last 12 months; now {mrr}."


def revenue_summary_blocks(report: RevenueReport) -> list[dict[str, Any]]:
    """The summary message: headline figures, movements, ratios with their formulas, the
    largest movements, and any note (a missing exchange rate, an undefined LTV)."""
    money = _money(report.currency)
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": HEADER.format(period=_month_name(report))},
        },
        _context(_when(report)),
        {
            "type": "section",
            "fields": [
                _field("MRR", money(report.mrr)),
                _field("Active customers", str(report.active_customers)),
                _field("ARPU", money(report.arpu)),
                _field("Churn rate", _percent(report.churn_rate)),
                _field("LTV", money(report.ltv)),
                _field("NRR", _percent(report.nrr)),
            ],
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": _movements_text(report)}},
    ]
    if report.top_movements:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _top_text(report.top_movements, money)},
            }
        )
    formulas = [report.formulas[key] for key in ("arpu", "churn_rate", "ltv", "nrr")]
    blocks.append(_context(" · ".join(formulas)))
    if report.notes:
        blocks.append(_context("\n".join(f":warning: {note}" for note in report.notes)))
    return blocks


def chart_alt_text(report: RevenueReport) -> str:
    return CHART_ALT.format(
        currency=report.currency.upper(), mrr=format_money(report.mrr, report.currency)
    )


def _movements_text(report: RevenueReport) -> str:
    money = _money(report.currency)
    lines = ["*Movements*"]
    for kind, total in report.movements.items():
        lines.append(f"{LABELS[kind]}: {money(total.amount, signed=True)} ({total.count})")
    paused = report.paused.amount + report.resumed.amount
    if report.paused.count or report.resumed.count:
        lines.append(f"Paused/resumed (not a movement): {money(paused, signed=True)}")
    if report.fx:
        lines.append(f"Exchange rates (not a movement): {money(report.fx, signed=True)}")
    return "\n".join(lines)


def _top_text(movements: list[TopMovement], money: Callable[..., str]) -> str:
    lines = ["*Largest movements*"]
    for movement in movements:
        who = _escape(movement.customer_name or movement.customer_id)
        when = f"<!date^{int(movement.occurred_at.timestamp())}^{{date_short}}|{movement.occurred_at:%Y-%m-%d}>"
        lines.append(
            f"{when} · {LABELS[movement.kind]} {money(movement.amount, signed=True)} · {who}"
        )
    return "\n".join(lines)


def _when(report: RevenueReport) -> str:
    if report.complete:
        return COMPLETE.format(start=report.start, last=report.end - timedelta(seconds=1))
    return RUNNING.format(
        ts=int(report.end.timestamp()), fallback=f"{report.end:%Y-%m-%d %H:%M} UTC"
    )


def _month_name(report: RevenueReport) -> str:
    return report.start.strftime("%B %Y")


def _field(label: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": f"*{label}*\n{value}"}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def _money(currency: str) -> Callable[..., str]:
    def show(amount: Decimal | None, *, signed: bool = False) -> str:
        return UNDEFINED if amount is None else format_money(amount, currency, signed=signed)

    return show


def _percent(value: Decimal | None) -> str:
    return UNDEFINED if value is None else f"{value * 100:.1f}%"


def _escape(text: str) -> str:
    """Customer names are data: never let them become mentions or links."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

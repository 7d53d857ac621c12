"""The revenue report as a plain-text table, for `billbot revenue` in a terminal."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from handlers.revenue.report import RevenueReport
from storage.money import format_money

LABELS = {
    "new": "New",
    "expansion": "Expansion",
    "contraction": "Contraction",
    "churn": "Churn",
    "reactivation": "Reactivation",
}


def format_report_text(report: RevenueReport) -> str:
    money = _money(report.currency)
    as_of = "" if report.complete else f", to {report.end:%Y-%m-%d %H:%M} UTC"
    rows = [
        f"Revenue for {report.period}{as_of}, in {report.currency.upper()}",
        "",
        _row("MRR", money(report.mrr), f"start {money(report.start_mrr)}"),
        _row("Active customers", str(report.active_customers), f"start {report.start_customers}"),
        _row("ARPU", money(report.arpu), report.formulas["arpu"]),
        "",
        _row("Movements", "amount", "count"),
    ]
    for kind, total in report.movements.items():
        rows.append(_row(f"  {LABELS[kind]}", money(total.amount, signed=True), f"{total.count}"))
    pauses = report.paused.count + report.resumed.count
    paused_amount = report.paused.amount + report.resumed.amount
    rows.append(
        _row("  Paused/resumed", money(paused_amount, signed=True), f"{pauses}  (not a movement)")
    )
    rows.append(
        _row("  FX", money(report.fx, signed=True), "exchange rates alone (not a movement)")
    )
    rows += [
        "",
        _row("Churn rate", _percent(report.churn_rate), report.formulas["churn_rate"]),
        _row(
            "",
            "",
            f"= {report.churned_customers} ÷ ({report.start_customers} + {report.new_customers})",
        ),
        _row("LTV", money(report.ltv), report.formulas["ltv"]),
        _row("NRR", _percent(report.nrr), report.formulas["nrr"]),
    ]
    if report.top_movements:
        rows += ["", "Top movements"]
        for movement in report.top_movements:
            who = movement.customer_name or movement.customer_id
            if movement.customer_name:
                who = f"{movement.customer_name} ({movement.customer_id})"
            amount = money(movement.amount, signed=True)
            rows.append(
                f"  {movement.occurred_at:%Y-%m-%d}  {LABELS[movement.kind]:<12} {amount:>14}  {who}"
            )
    if report.notes:
        rows += [""] + [f"Note: {note}" for note in report.notes]
    return "\n".join(rows)


def _row(label: str, value: str, comment: str = "") -> str:
    return f"{label:<20}{value:>16}   {comment}".rstrip()


def _money(currency: str) -> Callable[..., str]:
    def show(amount: Decimal | None, *, signed: bool = False) -> str:
        return "undefined" if amount is None else format_money(amount, currency, signed=signed)

    return show


def _percent(value: Decimal | None) -> str:
    return "undefined" if value is None else f"{value * 100:.2f}%"

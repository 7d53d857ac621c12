"""The MRR chart: one line, a year of month ends, money on the axis. Rendered headless.

Uses matplotlib's object API with the Agg canvas (never pyplot), so rendering holds no
global state and is safe from any thread of the web process.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, MaxNLocator

from storage.money import exponent, format_money

LINE_COLOUR = "#1264a3"  # Slack's link blue: readable in light and dark themes
_ZERO_DECIMALS = re.compile(r"\.0+$")


def axis_money(value: float, currency: str) -> str:
    """A tick label like format_money's, without cents when the amount is whole: `$12,500`."""
    minor = int(round(value))
    label = format_money(minor, currency)
    return _ZERO_DECIMALS.sub("", label)


def mrr_chart_png(
    points: Sequence[tuple[datetime, Decimal]],
    currency: str,
    *,
    title: str = "MRR, last 12 months",
    footnote: str | None = None,
) -> bytes:
    """`points` are (moment, MRR in exact minor units of `currency`), oldest first."""
    figure = Figure(figsize=(8, 4), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    labels = [point_label(moment) for moment, _ in points]
    values = [float(value) for _, value in points]
    positions = list(range(len(values)))
    axes.plot(positions, values, color=LINE_COLOUR, linewidth=2, marker="o", markersize=4)
    axes.fill_between(positions, values, color=LINE_COLOUR, alpha=0.08)
    axes.set_title(title, loc="left", fontsize=12)
    axes.set_xlabel("Month end")
    axes.set_ylabel(f"MRR ({currency.upper()})")
    axes.set_xticks(positions, labels, rotation=45, ha="right", fontsize=8)
    axes.set_ylim(bottom=0, top=_top(values, currency))
    axes.yaxis.set_major_locator(MaxNLocator(nbins=5, min_n_ticks=3))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: axis_money(value, currency)))
    axes.grid(axis="y", color="#dddddd", linewidth=0.8)
    axes.set_axisbelow(True)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    if footnote:
        figure.text(0.01, 0.01, footnote, fontsize=7, color="#616061")
    figure.tight_layout(rect=(0, 0.03 if footnote else 0, 1, 1))
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def point_label(moment: datetime) -> str:
    """A month end is stored as the first instant of the next month: label it with the month
    it ends (`Feb 2025`). Any other moment (the running month's "now") shows its date."""
    if (moment.day, moment.hour, moment.minute, moment.second, moment.microsecond) != (
        1,
        0,
        0,
        0,
        0,
    ):
        return moment.strftime("%b %-d")
    index = moment.year * 12 + moment.month - 2
    return moment.replace(year=index // 12, month=index % 12 + 1).strftime("%b %Y")


def _top(values: list[float], currency: str) -> float:
    """Room above the highest point; a hundred major units when everything is zero."""
    highest = max(values, default=0.0)
    return highest * 1.15 if highest > 0 else float(100 * 10 ** exponent(currency))

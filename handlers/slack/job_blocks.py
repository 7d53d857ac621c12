"""Block Kit for what the scheduled jobs post: the trial reminder list, the task nudge DM and
the revenue digest. Pure functions of small typed values; no store, no Slack.

Buttons carry ids only (`TrialRef`, `TaskRef`); the listeners re-read the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from handlers.slack import copy
from handlers.slack.cards import TaskInfo
from handlers.slack.ids import ActionId
from handlers.slack.mrkdwn import (
    clip,
    dashboard_customer_url,
    esc,
    mrr_text,
    slack_day,
    slack_time,
)
from handlers.slack.refs import TaskRef, TrialRef
from storage.money import format_money

Message = dict[str, Any]
MAX_ENTRIES = 23  # entries per message: 2 + 23 x (section + divider) = 48 < Slack's 50 blocks

TRIAL_TITLE = ":alarm_clock: {n} ending in the next {days}"
TRIAL_NOTE = (
    "Each trial is listed once; it shows up again only if its end date moves. "
    "Times are shown in your time zone."
)
TRIAL_IF_CONVERTS = "{mrr} if it converts"
TRIAL_ENDS = "trial ends {when}"
PAYMENT_METHOD = {
    True: ":credit_card: Payment method on file",
    False: ":warning: No payment method on file",
}
PAYMENT_METHOD_UNKNOWN = ":grey_question: Payment method not known"
NUDGE_TEXT = "{n} due today or overdue"
NUDGE_INTRO = ":wave: Good morning! *{n}* due today or overdue:"
NUDGE_DUE_TODAY = "due today"
NUDGE_OVERDUE = ":warning: overdue, was due {day}"
NUDGE_DONE = ":white_check_mark: Done"
NUDGE_DONE_BY = ":white_check_mark: Done (<@{user}>)"
BTN_DONE = "Done"
NUDGE_MORE = "…and {n} more, not shown here."
DIGEST_TITLE = {
    "daily": ":bar_chart: Revenue digest · {label}",
    "weekly": ":bar_chart: Revenue digest · week of {label}",
}
DIGEST_PERIOD = "{days} ({zone}) · amounts in {currency}"
DIGEST_CHART_ABOVE = (
    ":chart_with_upwards_trend: The MRR chart for the last 12 months is just above."
)
DIGEST_NONE = "none"
MOVEMENT_LABELS = {
    "new": "New",
    "expansion": "Expansion",
    "contraction": "Contraction",
    "churn": "Churn",
    "reactivation": "Reactivation",
}


def plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _text(text: str, kind: str = "mrkdwn") -> dict[str, Any]:
    if kind == "plain_text":
        return {"type": "plain_text", "text": text, "emoji": True}
    return {"type": "mrkdwn", "text": text}


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": _text(clip(text, 150), "plain_text")}


DIVIDER = {"type": "divider"}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_text(clip(text, 3000))]}


def _button(label: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    button = {"type": "button", "action_id": action_id, "text": _text(label, "plain_text")}
    button["value"] = value
    if style:
        button["style"] = style
    return button


# -- trial reminders --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrialEntry:
    subscription_id: str
    customer_id: str
    customer: str  # display name: name, else email, else id
    plan: str | None
    mrr: int | None  # minor units of `currency`: what it brings if it converts
    currency: str | None
    trial_end: datetime
    has_payment_method: bool | None
    livemode: bool = False
    task: TaskInfo | None = None


def trial_line(entry: TrialEntry) -> str:
    url = dashboard_customer_url(entry.customer_id, livemode=entry.livemode)
    lines = [f"*{esc(clip(entry.customer, 200))}* · {esc(entry.plan or copy.NO_PLAN)}"]
    value = TRIAL_IF_CONVERTS.format(mrr=f"*{mrr_text(entry.mrr, entry.currency)}*")
    lines.append(f"{value} · {TRIAL_ENDS.format(when=slack_time(entry.trial_end))}")
    method = PAYMENT_METHOD.get(entry.has_payment_method, PAYMENT_METHOD_UNKNOWN)
    lines.append(f"{method} · <{url}|{copy.BTN_OPEN_IN_STRIPE}>")
    if entry.task is not None:
        due = slack_day(entry.task.due_date) if entry.task.due_date else copy.NO_DUE_DATE
        lines.append(
            copy.CTX_TASK_OPEN.format(
                user=entry.task.assignee, due=due, title=esc(clip(entry.task.title, 200))
            )
        )
    return "\n".join(lines)


def trial_reminder_message(entries: list[TrialEntry], *, window_days: int) -> Message:
    """One message listing trials that end soon, soonest first, each with a task button."""
    entries = sorted(entries, key=lambda e: (e.trial_end, e.subscription_id))[:MAX_ENTRIES]
    title = TRIAL_TITLE.format(n=plural(len(entries), "trial"), days=plural(window_days, "day"))
    blocks: list[dict[str, Any]] = [_header(title), _context(TRIAL_NOTE)]
    for entry in entries:
        blocks.append(DIVIDER)
        ref = TrialRef(customer=entry.customer_id, subscription=entry.subscription_id)
        button = _button(copy.BTN_CREATE_TASK, ActionId.TRIAL_CREATE_TASK, ref.encode())
        blocks.append(
            {
                "type": "section",
                "block_id": f"trial:{entry.subscription_id}",
                "text": _text(clip(trial_line(entry), 3000)),
                "accessory": button,
            }
        )
    names = ", ".join(entry.customer for entry in entries[:5])
    more = f" and {len(entries) - 5} more" if len(entries) > 5 else ""
    return {"text": clip(f"{title.split(' ', 1)[1]}: {names}{more}", 3000), "blocks": blocks}


# -- task nudges ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NudgeEntry:
    task_id: int
    title: str
    due_date: date
    customer: str | None = None
    customer_id: str | None = None


def nudge_message(entries: list[NudgeEntry], *, today: date) -> Message:
    """A DM to one assignee: their open tasks due today or overdue, each with a Done button."""
    count = plural(len(entries), "follow-up task")
    hidden = max(0, len(entries) - MAX_ENTRIES)
    entries = sorted(entries, key=lambda e: (e.due_date, e.task_id))[:MAX_ENTRIES]
    blocks: list[dict[str, Any]] = [{"type": "section", "text": _text(NUDGE_INTRO.format(n=count))}]
    for entry in entries:
        when = (
            NUDGE_DUE_TODAY
            if entry.due_date >= today
            else NUDGE_OVERDUE.format(day=slack_day(entry.due_date))
        )
        about = f"{esc(clip(entry.customer, 200))} · " if entry.customer else ""
        blocks.append(
            {
                "type": "section",
                "block_id": f"task:{entry.task_id}",
                "text": _text(f"*{esc(clip(entry.title, 500))}*\n{about}{when}"),
                "accessory": _button(
                    BTN_DONE, ActionId.TASK_DONE, TaskRef(task=entry.task_id).encode(), "primary"
                ),
            }
        )
    if hidden:
        blocks.append(_context(NUDGE_MORE.format(n=hidden)))
    return {"text": NUDGE_TEXT.format(n=count), "blocks": blocks}


def nudge_marked_done(
    blocks: list[dict[str, Any]], *, task_id: int, user: str | None = None
) -> list[dict[str, Any]]:
    """The nudge's blocks with one task shown as done and its button gone."""
    done = NUDGE_DONE_BY.format(user=user) if user else NUDGE_DONE
    updated = []
    for block in blocks:
        if block.get("block_id") == f"task:{task_id}":
            block = {key: value for key, value in block.items() if key != "accessory"}
            title = block["text"]["text"].split("\n", 1)[0]
            block["text"] = _text(f"~{title.strip('*')}~\n{done}")
        updated.append(block)
    return updated


# -- the revenue digest -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestFigures:
    frequency: str  # daily | weekly
    label: str  # "Sat, Mar 28" / "Mar 23"
    start: datetime
    end: datetime  # exclusive
    zone: str
    currency: str  # reporting currency
    mrr: Decimal
    start_mrr: Decimal
    active_customers: int
    movements: dict[str, tuple[Decimal, int]]  # kind -> (amount, count), reporting currency
    top: list[tuple[str, str, Decimal]] = field(default_factory=list)  # customer, kind, amount
    failed_open: dict[str, tuple[int, int]] = field(default_factory=dict)  # currency -> n, amount
    recovered: dict[str, tuple[int, int]] = field(default_factory=dict)
    trials_converted: dict[str, tuple[int, int]] = field(default_factory=dict)  # currency -> n, mrr
    trials_lost: int = 0
    trials_ending_soon: int = 0
    excluded_currencies: tuple[str, ...] = ()
    chart_above: bool = False


def _per_currency(totals: dict[str, tuple[int, int]], *, per_month: bool = False) -> str:
    if not totals:
        return DIGEST_NONE
    count = sum(n for n, _ in totals.values())
    suffix = copy.PER_MONTH if per_month else ""
    amounts = " + ".join(f"{format_money(a, c)}{suffix}" for c, (_, a) in totals.items())
    return f"{count} · {amounts}"


def _change(figures: DigestFigures) -> str:
    delta = figures.mrr - figures.start_mrr
    text = format_money(delta, figures.currency, signed=True)
    if figures.start_mrr:
        text += f" ({delta / figures.start_mrr * 100:+.1f}%)"
    return text


def digest_fields(figures: DigestFigures) -> list[str]:
    trials = (
        f"{_per_currency(figures.trials_converted, per_month=True)} converted\n"
        f"{figures.trials_lost} ended unpaid · {figures.trials_ending_soon} ending in the next 7 days"
    )
    return [
        f"*MRR*\n{format_money(figures.mrr, figures.currency)}",
        f"*Change*\n{_change(figures)}",
        f"*Active customers*\n{figures.active_customers}",
        f"*Trials*\n{trials}",
        f"*Failed payments open now*\n{_per_currency(figures.failed_open)}",
        f"*Recovered in the period*\n{_per_currency(figures.recovered)}",
    ]


def digest_movements(figures: DigestFigures) -> str:
    lines = ["*Movements*"]
    for kind, label in MOVEMENT_LABELS.items():
        amount, count = figures.movements.get(kind, (Decimal(0), 0))
        lines.append(f"{label}: {format_money(amount, figures.currency, signed=True)} ({count})")
    return "\n".join(lines)


def digest_message(figures: DigestFigures) -> Message:
    title = DIGEST_TITLE[figures.frequency].format(label=figures.label)
    last_day = figures.end - timedelta(days=1)
    days = f"{figures.start:%a, %b %-d}"
    if last_day.date() != figures.start.date():
        days += f" to {last_day:%a, %b %-d}"
    period = DIGEST_PERIOD.format(days=days, zone=figures.zone, currency=figures.currency.upper())
    blocks: list[dict[str, Any]] = [
        _header(title),
        _context(period),
        {"type": "section", "fields": [_text(f) for f in digest_fields(figures)]},
        {"type": "section", "text": _text(digest_movements(figures))},
    ]
    if figures.top:
        lines = ["*Largest movements*"] + [
            f"{MOVEMENT_LABELS.get(kind, kind)} {format_money(amount, figures.currency, signed=True)} · {esc(clip(who, 200))}"
            for who, kind, amount in figures.top
        ]
        blocks.append({"type": "section", "text": _text("\n".join(lines))})
    notes = []
    if figures.excluded_currencies:
        codes = ", ".join(c.upper() for c in figures.excluded_currencies)
        notes.append(f":warning: No exchange rate for {codes}: left out of MRR and movements.")
    if figures.chart_above:
        notes.append(DIGEST_CHART_ABOVE)
    blocks += [_context(note) for note in notes]
    text = f"{title.split(' ', 1)[1]}: MRR {format_money(figures.mrr, figures.currency)} ({_change(figures)})"
    return {"text": text, "blocks": blocks}

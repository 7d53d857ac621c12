"""Block Kit for the App Home: the MRR headline, the viewer's open tasks, the latest alerts.
Pure functions of small values; a Home tab holds at most 100 blocks."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from handlers.revenue.headline import MrrHeadline
from handlers.slack import command_copy as words
from handlers.slack.command_ids import TaskRef, TaskScope
from handlers.slack.mrkdwn import clip, slack_time
from handlers.slack.task_blocks import task_blocks
from storage.money import format_money
from storage.task_list import TaskRow

HOME_TASKS = 15  # two blocks each
HOME_ALERTS = 15  # one block each; with the rest, well inside 100


@dataclass(frozen=True, slots=True)
class AlertLine:
    """One alert as the Home lists it: its own summary line (escaped mrkdwn) and state."""

    summary: str
    state: str  # open, task, handled, recovered
    who: str | None  # the task's owner, or who handled it
    at: datetime
    link: str | None


def home_view(
    *,
    headline: MrrHeadline | None,
    tasks: Sequence[TaskRow],
    total_tasks: int,
    alerts: Sequence[AlertLine],
    today: date,
    now: datetime,
) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [
        _header(words.HOME_TITLE),
        _context(words.HOME_HINT),
    ]
    if headline is not None:
        blocks += _headline_blocks(headline)
    blocks += [{"type": "divider"}, _header(f"{words.HOME_TASKS} ({total_tasks})")]
    if not tasks:
        blocks.append(_section(words.HOME_NO_TASKS))
    for row in list(tasks)[:HOME_TASKS]:
        ref = TaskRef(task=row.id, scope=TaskScope.HOME)
        blocks += task_blocks(row, ref=ref, today=today, show_owner=False)
    if total_tasks > min(len(tasks), HOME_TASKS):
        shown = min(len(tasks), HOME_TASKS)
        blocks.append(_context(words.TASKS_CAPPED.format(shown=shown, n=total_tasks)))
    blocks += [{"type": "divider"}, _header(words.HOME_ALERTS)]
    if not alerts:
        blocks.append(_section(words.HOME_NO_ALERTS))
    blocks += [_section(alert_text(line)) for line in list(alerts)[:HOME_ALERTS]]
    blocks.append(_context(words.HOME_UPDATED.format(when=slack_time(now))))
    return {"type": "home", "blocks": blocks}


def alert_text(line: AlertLine) -> str:
    state = words.ALERT_STATE.get(line.state, line.state).format(user=line.who)
    details = [state, slack_time(line.at)]
    if line.link:
        details.append(f"<{line.link}|{words.BTN_OPEN_ALERT}>")
    return f"{clip(line.summary, 1500)}\n" + " · ".join(details)


def _headline_blocks(headline: MrrHeadline) -> list[dict[str, Any]]:
    mrr = f"{format_money(headline.mrr, headline.currency)}{'/mo'}"
    blocks = [_section(words.HOME_MRR.format(mrr=mrr, active=headline.active_customers))]
    if headline.excluded_currencies:
        currencies = ", ".join(code.upper() for code in headline.excluded_currencies)
        blocks.append(_context(words.HOME_MRR_EXCLUDED.format(currencies=currencies)))
    return blocks


def _header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, 150)}}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 3000)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, 3000)}]}

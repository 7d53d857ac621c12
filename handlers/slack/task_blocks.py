"""Block Kit for follow-up task lists (`/tasks` and the App Home): pure functions, no I/O.

Each task is two blocks: what it is (title, customer, due date, owner, a link to its
alert), then its controls: a Done button and a "Reassign to…" user picker. Both carry a
`TaskRef` (the button as its value, the picker in its block id), so the listener knows
which task and which list to show again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from handlers.slack import command_copy as words
from handlers.slack.command_ids import CommandAction, TaskRef, TaskScope
from handlers.slack.mrkdwn import clip, esc, slack_day
from storage.task_list import TaskRow

MAX_TASKS_IN_MESSAGE = 20  # two blocks each, inside Slack's 50 per message
Message = dict[str, Any]


def message_link(channel: str, ts: str, *, team_domain: str | None = None) -> str:
    """A link to a message without an API call: Slack's permalink shape, on the workspace's
    own domain when the request told us it, else on slack.com (which redirects)."""
    host = f"{team_domain}.slack.com" if team_domain else "slack.com"
    return f"https://{host}/archives/{channel}/p{ts.replace('.', '')}"


def task_text(row: TaskRow, *, today: date, show_owner: bool, team_domain: str | None) -> str:
    details = [esc(clip(row.customer_name or row.customer_id or words.TASK_NO_CUSTOMER, 200))]
    if row.due_date is None:
        details.append(words.TASK_NO_DUE)
    elif row.due_date < today:
        details.append(words.TASK_LATE.format(when=slack_day(row.due_date)))
    else:
        details.append(words.TASK_DUE.format(when=slack_day(row.due_date)))
    if show_owner:
        details.append(words.TASK_FOR.format(user=row.assignee))
    if row.alert_channel and row.alert_ts:
        url = message_link(row.alert_channel, row.alert_ts, team_domain=team_domain)
        details.append(words.TASK_ALERT.format(url=url, label=words.BTN_OPEN_ALERT))
    return f"*{esc(clip(row.title, 500))}*\n" + " · ".join(details)


def task_blocks(
    row: TaskRow,
    *,
    ref: TaskRef,
    today: date,
    show_owner: bool,
    team_domain: str | None = None,
) -> list[dict[str, Any]]:
    text = task_text(row, today=today, show_owner=show_owner, team_domain=team_domain)
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        {
            "type": "actions",
            "block_id": ref.encode(),
            "elements": [
                {
                    "type": "button",
                    "action_id": CommandAction.TASK_DONE.value,
                    "text": {"type": "plain_text", "text": words.BTN_DONE},
                    "value": ref.encode(),
                    "style": "primary",
                },
                {
                    "type": "users_select",
                    "action_id": CommandAction.TASK_REASSIGN.value,
                    "placeholder": {"type": "plain_text", "text": words.REASSIGN_PLACEHOLDER},
                },
            ],
        },
    ]


def task_list_message(
    rows: Sequence[TaskRow],
    *,
    total: int,
    scope: TaskScope,
    user: str | None,
    today: date,
    team_domain: str | None = None,
    note: str | None = None,
) -> Message:
    """`/tasks` (MINE, `user` is the caller), `/tasks all` (ALL), `/tasks @x` (USER, `user`)."""
    heading, empty = _heading(scope, user, total)
    blocks: list[dict[str, Any]] = []
    if note:
        blocks.append(_context(note))
    if not rows:
        blocks.append(_section(empty))
        return {"text": empty, "blocks": blocks}
    blocks.append(_section(heading))
    shown = list(rows)[:MAX_TASKS_IN_MESSAGE]
    for row in shown:
        ref = TaskRef(task=row.id, scope=scope, user=user if scope is TaskScope.USER else None)
        blocks += task_blocks(
            row,
            ref=ref,
            today=today,
            show_owner=scope is TaskScope.ALL,
            team_domain=team_domain,
        )
    if total > len(shown):
        blocks.append(_context(words.TASKS_CAPPED.format(shown=len(shown), n=total)))
    return {"text": heading.replace("*", ""), "blocks": blocks}


def _heading(scope: TaskScope, user: str | None, total: int) -> tuple[str, str]:
    if scope is TaskScope.ALL:
        return words.TASKS_ALL.format(n=total), words.TASKS_NONE_ALL
    if scope is TaskScope.USER:
        return words.TASKS_USER.format(user=user, n=total), words.TASKS_NONE_USER.format(user=user)
    return words.TASKS_MINE.format(n=total), words.TASKS_NONE_MINE


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 3000)}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, 3000)}]}

"""Block Kit for `/paid`: one customer in detail, several to pick from, no match, usage.

Pure functions of `storage.customer_summary` values and a few extras (open tasks, the
latest MRR change). Everything that came from Stripe or a person (names, emails, plan
names, the query itself) is escaped, so it can never become a mention or a link.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from handlers.slack import command_copy as words
from handlers.slack.command_ids import CommandAction, CustomerRef
from handlers.slack.mrkdwn import clip, dashboard_customer_url, esc, slack_day, slack_time
from storage.customer_summary import CustomerSummary, OpenInvoice, SubscriptionSummary
from storage.models.tasks import Task
from storage.money import Money, format_money

MAX_LINES = 10  # subscriptions, invoices or tasks listed before "…and N more"
Message = dict[str, Any]


@dataclass(frozen=True, slots=True)
class MrrChange:
    """The customer's latest MRR change in its main currency: "since Mar 3, was $49"."""

    since: datetime
    previous: Decimal  # exact minor units


def display_name(summary: CustomerSummary) -> str:
    return summary.name or summary.email or summary.customer_id


def customer_message(
    summary: CustomerSummary,
    *,
    tasks: Sequence[Task],
    mrr_change: MrrChange | None,
    asked_by: str | None = None,
) -> Message:
    """The whole answer about one customer. `asked_by` is set for `public` answers."""
    name = display_name(summary)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": clip(name, 150)}},
        _section(status_line(summary)),
        {
            "type": "section",
            "fields": [_field(label, value) for label, value in facts(summary, mrr_change)],
        },
        _section(subscriptions_text(summary.subscriptions)),
        _section(invoices_text(summary.open_invoices)),
        _section(tasks_text(tasks)),
        _context(words.AS_OF.format(when=slack_time(summary.as_of))),
    ]
    if asked_by:
        blocks.append(_context(words.PAID_ASKED_BY.format(user=asked_by)))
    blocks.append({"type": "actions", "elements": customer_buttons(summary)})
    status = words.STATUS_LABEL[summary.status].split(" ", 1)[1]
    return {"text": f"{name}: {status}", "blocks": blocks}


def status_line(summary: CustomerSummary) -> str:
    parts = [f"*{words.STATUS_LABEL[summary.status]}*"]
    if summary.email:
        parts.append(esc(clip(summary.email, 300)))
    parts.append(f"`{summary.customer_id}`")
    if summary.deleted:
        parts.append(words.DELETED)
    if not summary.livemode:
        parts.append(words.TEST_MODE)
    return " · ".join(parts)


def facts(summary: CustomerSummary, mrr_change: MrrChange | None) -> list[tuple[str, str]]:
    mrr = f"{format_money(summary.mrr.amount, summary.mrr.currency)}/mo"
    if mrr_change is not None:
        since = slack_day(mrr_change.since.date())
        previous = format_money(mrr_change.previous, summary.mrr.currency)
        mrr += "\n" + words.MRR_SINCE.format(when=since, previous=previous)
    others = [money for money in summary.mrr_by_currency if money.currency != summary.mrr.currency]
    if others:
        mrr += "\n" + words.MRR_ALSO.format(amounts=", ".join(f"{m}/mo" for m in others))
    ltv = " + ".join(str(money) for money in summary.lifetime_value_by_currency) or str(
        summary.lifetime_value
    )
    payment = summary.last_payment
    last = (
        f"{format_money(payment.amount, payment.currency)}"
        + (f" · {slack_time(payment.at)}" if payment.at else "")
        if payment
        else words.NO_PAYMENT
    )
    rows = [(words.F_MRR, mrr), (words.F_LTV, ltv), (words.F_LAST_PAYMENT, last)]
    if summary.next_payment_attempt:
        rows.append((words.F_NEXT_ATTEMPT, slack_time(summary.next_payment_attempt)))
    return rows


def cycle(row: SubscriptionSummary) -> str | None:
    if not row.interval:
        return None
    count = row.interval_count or 1
    return words.CYCLE.get((row.interval, count)) or words.CYCLE_N.format(
        n=count, interval=row.interval
    )


def subscription_line(row: SubscriptionSummary) -> str:
    parts = [f"*{esc(clip(row.plan or words.NONE, 200))}*"]
    if row.status != "active":
        parts.append(words.SUB_STATUS.get(row.status, esc(row.status)))
    described = [cycle(row), words.SEATS.format(n=row.quantity) if row.quantity > 1 else None]
    parts += [part for part in described if part]
    if row.mrr.amount:
        parts.append(f"{row.mrr}/mo")
    if row.ended_at:
        parts.append(words.ENDED.format(when=slack_time(row.ended_at)))
    elif row.status == "trialing" and row.trial_end:
        parts.append(words.TRIAL_ENDS.format(when=slack_time(row.trial_end)))
    elif row.current_period_end and not row.cancel_at and row.status != "canceled":
        parts.append(words.RENEWS.format(when=slack_time(row.current_period_end)))
    if row.cancel_at and not row.ended_at:
        parts.append(words.CANCELS.format(when=slack_time(row.cancel_at)))
    return "• " + " · ".join(parts)


def subscriptions_text(rows: Sequence[SubscriptionSummary]) -> str:
    if not rows:
        return words.NO_SUBSCRIPTIONS
    return "\n".join([words.SUBSCRIPTIONS, *_capped([subscription_line(row) for row in rows])])


def invoice_line(invoice: OpenInvoice) -> str:
    label = esc(clip(invoice.number or invoice.id, 100))
    if invoice.hosted_invoice_url:
        label = f"<{invoice.hosted_invoice_url}|{label}>"
    parts = [label, str(invoice.amount_remaining)]
    if invoice.overdue:
        parts.append(words.INVOICE_OVERDUE)
    attempts = invoice.attempt_count
    parts.append(
        words.INVOICE_ATTEMPTS.get(attempts) or words.INVOICE_ATTEMPTS_N.format(n=attempts)
    )
    if invoice.next_payment_attempt:
        parts.append(words.INVOICE_NEXT.format(when=slack_time(invoice.next_payment_attempt)))
    elif invoice.due_date:
        parts.append(words.INVOICE_DUE.format(when=slack_time(invoice.due_date)))
    return "• " + " · ".join(parts)


def invoices_text(invoices: Sequence[OpenInvoice]) -> str:
    if not invoices:
        return words.NO_INVOICES
    owed: dict[str, int] = defaultdict(int)
    for invoice in invoices:
        owed[invoice.amount_remaining.currency] += invoice.amount_remaining.amount
    total = " + ".join(str(Money(amount, currency)) for currency, amount in owed.items())
    lines = _capped([invoice_line(invoice) for invoice in invoices])
    return "\n".join([words.INVOICES.format(total=total), *lines])


def tasks_text(tasks: Sequence[Task]) -> str:
    if not tasks:
        return words.NO_TASKS
    lines = []
    for task in tasks:
        due = slack_day(task.due_date) if task.due_date else words.TASK_NO_DUE
        lines.append(f"• <@{task.assignee}> · {due} · _{esc(clip(task.title, 200))}_")
    return "\n".join([words.TASKS, *_capped(lines)])


def customer_buttons(summary: CustomerSummary) -> list[dict[str, Any]]:
    ref = CustomerRef(customer=summary.customer_id).encode()
    url = dashboard_customer_url(summary.customer_id, livemode=summary.livemode)
    return [
        _button(words.BTN_CREATE_TASK, CommandAction.PAID_CREATE_TASK, value=ref, style="primary"),
        _button(words.BTN_OPEN_IN_STRIPE, CommandAction.PAID_OPEN_IN_STRIPE, url=url),
    ]


def several_message(
    summaries: Sequence[CustomerSummary], *, query: str, total: int, capped: bool
) -> Message:
    shown, quoted = len(summaries), f"`{_quote(query)}`"
    if capped:
        title = words.PAID_SEVERAL_CAPPED.format(n=total, query=quoted, shown=shown)
    elif total > shown:
        title = words.PAID_SEVERAL_SOME.format(total=total, query=quoted, shown=shown)
    else:
        title = words.PAID_SEVERAL.format(n=total, query=quoted)
    blocks = [_section(title)]
    for summary in summaries:
        parts = [f"*{esc(clip(display_name(summary), 200))}*", words.STATUS_LABEL[summary.status]]
        if summary.email and summary.email != display_name(summary):
            parts.append(esc(clip(summary.email, 200)))
        parts += [f"`{summary.customer_id}`", f"{summary.mrr}/mo"]
        ref = CustomerRef(customer=summary.customer_id).encode()
        button = _button(words.BTN_SHOW, CommandAction.PAID_SHOW, value=ref)
        blocks.append(_section(" · ".join(parts), accessory=button))
    blocks.append(_context(words.PAID_PICK))
    return {"text": title.replace("*", ""), "blocks": blocks}


def no_match_message(query: str, suggestions: Sequence[str]) -> Message:
    text = words.PAID_NO_MATCH.format(query=esc(clip(query, 200)))
    hint = (
        words.PAID_SUGGEST.format(suggestions=", ".join(f"`{_quote(s)}`" for s in suggestions))
        if suggestions
        else words.PAID_NO_SUGGESTION
    )
    return {"text": text.replace("*", ""), "blocks": [_section(f"{text}\n{hint}")]}


def _quote(text: str) -> str:
    """User or Stripe text inside `code`: escaped, and no backtick to end the span early."""
    return esc(clip(text, 200)).replace("`", "'")


def _capped(lines: list[str]) -> list[str]:
    if len(lines) <= MAX_LINES:
        return lines
    return [*lines[:MAX_LINES], words.MORE_LINES.format(n=len(lines) - MAX_LINES)]


def _button(label: str, action_id: str, **extra: str) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": label},
        **extra,
    }


def _field(label: str, value: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": clip(f"*{label}*\n{value}", 2000)}


def _section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": clip(text, 3000)}, **extra}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, 3000)}]}

"""Every Block Kit message and view billbot sends, as pure functions of small typed values.

A builder returns a chat.postMessage payload (`{"text", "blocks"}`) or a view dict; it never
reads the store or calls Slack, so tests assert on its output directly. User-facing words
live in `handlers/slack/copy.py`. Limits that Slack enforces are kept here: 50 blocks per
message, 3000 characters a section, 2000 a field, 150 a header, 75 a button label.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from handlers.slack import copy
from handlers.slack.cards import AlertCard, AlertFacts, TaskInfo
from handlers.slack.ids import ActionId, CallbackId, TaskModalBlock
from handlers.slack.mrkdwn import (
    clip,
    dashboard_customer_url,
    esc,
    money_text,
    mrr_text,
    slack_day,
    slack_time,
)
from handlers.slack.refs import AlertRef, TaskModalRef
from storage.money import format_money

MAX_BLOCKS = 50
MAX_SECTION = 3000
MAX_FIELD = 2000
MAX_HEADER = 150
MAX_BUTTON = 75
MAX_FIELDS = 10
STORM_MAX_ENTRIES = 40  # one summary lists at most this many alerts (header + context + 40 < 50)
Message = dict[str, Any]


# -- small helpers ----------------------------------------------------------------------


def _customer(facts: AlertFacts) -> str:
    return facts.customer_name or facts.customer_email or facts.customer_id or copy.UNKNOWN_CUSTOMER


def _text(text: str, kind: str = "mrkdwn") -> dict[str, Any]:
    if kind == "plain_text":
        return {"type": "plain_text", "text": text, "emoji": True}
    return {"type": "mrkdwn", "text": text}


def _section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": _text(clip(text, MAX_SECTION)), **extra}


def _button(label: str, action_id: str, **extra: str | None) -> dict[str, Any]:
    """A button; `extra` is `value`, `url` and/or `style`, left out when None."""
    button = {
        "type": "button",
        "action_id": action_id,
        "text": _text(clip(label, MAX_BUTTON), "plain_text"),
    }
    return {**button, **{key: value for key, value in extra.items() if value is not None}}


# -- alert messages -------------------------------------------------------------------------


def headline(card: AlertCard) -> str:
    """`:x: Payment failed` style title, reflecting the alert's state."""
    if card.state == "recovered":
        return copy.RECOVERED_TITLE
    return copy.TITLES.get(card.kind, card.kind)


def summary_line(card: AlertCard, *, with_title: bool = True) -> str:
    """One line about the alert: the notification text, and (without title) a storm summary line."""
    facts = card.facts
    parts = [f"{headline(card)}: {_customer(facts)}" if with_title else _customer(facts)]
    if card.kind in copy.PAYMENT_KINDS or card.kind == "refund":
        parts.append(money_text(facts.amount, facts.currency))
    if card.kind in copy.PAYMENT_KINDS and facts.attempt:
        parts.append(copy.ATTEMPT_N.format(n=facts.attempt))
    if card.kind in copy.PLAN_CHANGE_KINDS and facts.mrr is not None and facts.old_mrr is not None:
        parts.append(
            f"{mrr_text(facts.old_mrr, facts.mrr_currency)} → {mrr_text(facts.mrr, facts.mrr_currency)}"
        )
    elif card.kind not in copy.PAYMENT_KINDS and card.kind != "refund" and facts.mrr is not None:
        parts.append(mrr_text(facts.mrr, facts.mrr_currency))
    return " · ".join(parts)


def alert_message(card: AlertCard) -> Message:
    header = f"{copy.EMOJI.get(card.kind, '')} {headline(card)}: {_customer(card.facts)}".strip()
    if card.state == "recovered":
        header = f":white_check_mark: {headline(card)}: {_customer(card.facts)}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _text(clip(header, MAX_HEADER), "plain_text")},
        {
            "type": "section",
            "fields": [_text(clip(f, MAX_FIELD)) for f in alert_fields(card)[:MAX_FIELDS]],
        },
    ]
    if card.facts.cancellation_comment:
        blocks.append(_section(f"> {esc(clip(card.facts.cancellation_comment, 1000))}"))
    # One context block per line: Slack lays the elements of one block side by side.
    blocks += [{"type": "context", "elements": [_text(line)]} for line in alert_context(card)]
    actions = alert_actions(card)
    if actions:
        blocks.append(
            {"type": "actions", "block_id": f"alert:{card.alert_id}", "elements": actions}
        )
    return {"text": summary_line(card), "blocks": blocks}


def alert_fields(card: AlertCard) -> list[str]:
    facts, kind = card.facts, card.kind
    fields = [_customer_field(facts)]
    if kind in copy.PAYMENT_KINDS:
        fields += _payment_fields(card)
    elif kind == "refund":
        fields.append(f"*{copy.F_REFUNDED}*\n{money_text(facts.amount, facts.currency)}")
        fields.append(
            f"*{copy.F_REASON}*\n{esc(copy.humanize(facts.refund_reason) or copy.NO_REASON)}"
        )
        fields.append(
            f"*{copy.F_CHARGE}*\n{money_text(facts.charge_amount, facts.currency)}"
            f" ({copy.REFUNDED_SO_FAR.format(amount=money_text(facts.amount_refunded, facts.currency))})"
        )
    else:
        fields += _subscription_fields(card)
    return fields


def _customer_field(facts: AlertFacts) -> str:
    lines = [f"*{copy.F_CUSTOMER}*", esc(_customer(facts))]
    if facts.customer_email and facts.customer_email != _customer(facts):
        lines.append(esc(facts.customer_email))
    return "\n".join(lines)


def _payment_fields(card: AlertCard) -> list[str]:
    facts = card.facts
    invoice = esc(facts.invoice_number or facts.invoice_id or copy.UNKNOWN)
    if facts.hosted_invoice_url:
        invoice = f"<{facts.hosted_invoice_url}|{invoice}>"
    fields = [f"*{copy.F_AMOUNT}*\n{money_text(facts.amount, facts.currency)} · {invoice}"]
    fields.append(f"*{copy.F_ATTEMPT}*\n{facts.attempt or copy.UNKNOWN}")
    if card.state == "recovered":
        paid = (
            slack_time(facts.paid_at or card.recovered_at)
            if (facts.paid_at or card.recovered_at)
            else copy.UNKNOWN
        )
        fields.append(f"*{copy.F_PAID}*\n{paid}")
    else:
        fields.append(
            f"*{copy.F_DECLINE}*\n{esc(clip(facts.decline_reason or copy.NO_REASON, 500))}"
        )
        retry = slack_time(facts.next_retry_at) if facts.next_retry_at else copy.NO_MORE_RETRIES
        fields.append(f"*{copy.F_NEXT_RETRY}*\n{retry}")
    if facts.one_off_invoice:
        plan, mrr = copy.ONE_OFF_PLAN, copy.ONE_OFF_MRR
    else:
        plan, mrr = esc(facts.plan or copy.NO_PLAN), mrr_text(facts.mrr, facts.mrr_currency)
    label = copy.F_MRR if card.state == "recovered" else copy.F_MRR_AT_RISK
    fields += [f"*{copy.F_PLAN}*\n{plan}", f"*{label}*\n{mrr}"]
    return fields


def _subscription_fields(card: AlertCard) -> list[str]:
    facts, kind = card.facts, card.kind
    plan = esc(facts.plan or copy.NO_PLAN)
    if kind in copy.PLAN_CHANGE_KINDS:
        old_plan = esc(facts.old_plan or copy.UNKNOWN)
        fields = [
            f"*{copy.F_PLAN}*\n{old_plan} → {plan}",
            f"*{copy.F_MRR}*\n{mrr_text(facts.old_mrr, facts.mrr_currency)} → {mrr_text(facts.mrr, facts.mrr_currency)}",
        ]
        if facts.mrr is not None and facts.old_mrr is not None and facts.mrr_currency:
            change = format_money(facts.mrr - facts.old_mrr, facts.mrr_currency, signed=True)
            fields.append(f"*{copy.F_MRR_CHANGE}*\n{change}{copy.PER_MONTH}")
        return fields
    fields = [
        f"*{copy.F_PLAN}*\n{plan}",
        f"*{copy.MRR_LABELS.get(kind, copy.F_MRR)}*\n{mrr_text(facts.mrr, facts.mrr_currency)}",
    ]
    if kind == "cancel_scheduled" and facts.cancel_at:
        fields.append(f"*{copy.F_CANCELS_ON}*\n{slack_time(facts.cancel_at)}")
    if kind == "canceled" and facts.ended_at:
        fields.append(f"*{copy.F_ENDED}*\n{slack_time(facts.ended_at)}")
    if kind in ("canceled", "cancel_scheduled"):
        reason = copy.humanize(facts.cancellation_feedback) or copy.humanize(
            facts.cancellation_reason
        )
        fields.append(f"*{copy.F_REASON}*\n{esc(reason or copy.NO_REASON)}")
    if kind == "trial_ending":
        fields.append(
            f"*{copy.F_TRIAL_ENDS}*\n{slack_time(facts.trial_end) if facts.trial_end else copy.UNKNOWN}"
        )
        fields.append(
            f"*{copy.F_PAYMENT_METHOD}*\n{copy.PAYMENT_METHOD.get(facts.has_payment_method, copy.UNKNOWN)}"
        )
    return fields


def alert_context(card: AlertCard) -> list[str]:
    lines = []
    if card.state == "recovered" and card.recovered_at:
        lines.append(copy.CTX_RECOVERED.format(when=slack_time(card.recovered_at)))
    if card.state == "handled" and card.handled_by and card.handled_at:
        lines.append(
            copy.CTX_HANDLED.format(user=card.handled_by, when=slack_time(card.handled_at))
        )
    if card.task is not None:
        lines.append(task_line(card.task))
    if not card.facts.livemode:
        lines.append(copy.CTX_TEST_MODE)
    return lines


def task_line(task: TaskInfo) -> str:
    due = slack_day(task.due_date) if task.due_date else copy.NO_DUE_DATE
    template = copy.CTX_TASK_DONE if task.status == "done" else copy.CTX_TASK_OPEN
    return template.format(user=task.assignee, due=due, title=esc(clip(task.title, 200)))


def alert_actions(card: AlertCard) -> list[dict[str, Any]]:
    facts, buttons = card.facts, []
    value = AlertRef(alert=card.alert_id).encode()
    if card.state == "open" and facts.customer_id:
        buttons += [
            _button(copy.BTN_CREATE_TASK, ActionId.CREATE_TASK, value=value, style="primary"),
            _button(copy.BTN_ASSIGN_TO_ME, ActionId.ASSIGN_TO_ME, value=value),
            _button(copy.BTN_MARK_HANDLED, ActionId.MARK_HANDLED, value=value),
        ]
    if facts.customer_id:
        url = dashboard_customer_url(facts.customer_id, livemode=facts.livemode)
        buttons.append(_button(copy.BTN_OPEN_IN_STRIPE, ActionId.OPEN_IN_STRIPE, url=url))
    if facts.hosted_invoice_url:
        buttons.append(
            _button(copy.BTN_OPEN_INVOICE, ActionId.OPEN_INVOICE, url=facts.hosted_invoice_url)
        )
    return buttons


# -- thread replies -------------------------------------------------------------------------


def development_reply(card: AlertCard, *, previous_kind: str) -> Message:
    """What changed about an incident, as a short reply in its alert's thread."""
    facts = card.facts
    if card.state == "recovered":
        when = (
            slack_time(facts.paid_at or card.recovered_at)
            if (facts.paid_at or card.recovered_at)
            else ""
        )
        text = copy.REPLY_RECOVERED.format(
            amount=money_text(facts.amount, facts.currency), when=when
        ).strip()
    elif card.kind == previous_kind == "payment_failed":
        retry = (
            copy.NEXT_RETRY_AT.format(when=slack_time(facts.next_retry_at))
            if facts.next_retry_at
            else copy.NO_MORE_RETRIES
        )
        reason = esc(clip(facts.decline_reason or copy.NO_REASON, 500))
        text = copy.REPLY_ATTEMPT.format(n=facts.attempt or "?", reason=reason, retry=retry)
    elif card.kind == "cancel_scheduled" and facts.cancel_at:
        text = copy.REPLY_RESCHEDULED.format(when=slack_time(facts.cancel_at))
    else:
        text = copy.REPLIES.get(card.kind, copy.REPLY_CHANGED).format(
            mrr=mrr_text(facts.mrr, facts.mrr_currency), customer=esc(_customer(facts))
        )
    return {"text": text, "blocks": [_section(text)]}


def task_reply(task: TaskInfo, *, actor: str, taken: bool = False) -> Message:
    due = slack_day(task.due_date) if task.due_date else copy.NO_DUE_DATE
    template = copy.REPLY_TASK_TAKEN if taken else copy.REPLY_TASK_CREATED
    text = template.format(
        actor=actor, user=task.assignee, due=due, title=esc(clip(task.title, 500))
    )
    return {"text": text, "blocks": [_section(text)]}


# -- the task modal -------------------------------------------------------------------------


def default_task_title(card: AlertCard) -> str:
    return clip(
        copy.TASK_TITLE.format(what=headline(card), customer=_customer(card.facts)),
        copy.TASK_TITLE_MAX,
    )


def task_modal(
    *, ref: TaskModalRef, about: str, title: str, assignee: str, due: date
) -> dict[str, Any]:
    """The "Create follow-up task" modal. `about` is one line of context shown above the inputs."""

    def field(
        block: TaskModalBlock, label: str, element: dict[str, Any], optional: bool = False
    ) -> dict[str, Any]:
        element = {**element, "action_id": block.action_id}
        return {
            "type": "input",
            "block_id": block.value,
            "label": _text(label, "plain_text"),
            "element": element,
            "optional": optional,
        }

    blocks = [
        {"type": "context", "elements": [_text(clip(about, MAX_SECTION))]},
        field(
            TaskModalBlock.TITLE,
            copy.M_TITLE,
            {
                "type": "plain_text_input",
                "initial_value": clip(title, copy.TASK_TITLE_MAX),
                "placeholder": _text(copy.M_TITLE_HINT, "plain_text"),
                "max_length": copy.TASK_TITLE_MAX,
            },
        ),
        field(
            TaskModalBlock.ASSIGNEE,
            copy.M_ASSIGNEE,
            {"type": "users_select", "initial_user": assignee},
        ),
        field(
            TaskModalBlock.DUE, copy.M_DUE, {"type": "datepicker", "initial_date": due.isoformat()}
        ),
        field(
            TaskModalBlock.NOTE,
            copy.M_NOTE,
            {
                "type": "plain_text_input",
                "multiline": True,
                "max_length": copy.TASK_NOTE_MAX,
                "placeholder": _text(copy.M_NOTE_HINT, "plain_text"),
            },
            optional=True,
        ),
    ]
    return {
        "type": "modal",
        "callback_id": CallbackId.TASK_MODAL.value,
        "private_metadata": ref.encode(),
        "title": _text(copy.M_HEADING, "plain_text"),
        "submit": _text(copy.M_SUBMIT, "plain_text"),
        "close": _text(copy.M_CLOSE, "plain_text"),
        "blocks": blocks,
    }


# -- storms ---------------------------------------------------------------------------------


def storm_summary(kind: str, cards: list[AlertCard]) -> Message:
    """One message standing in for many alerts of one kind that piled up for a channel."""
    cards = cards[:STORM_MAX_ENTRIES]
    title = copy.STORM_TITLE.format(n=len(cards), what=copy.TITLES.get(kind, kind))
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": _text(
                clip(f"{copy.EMOJI.get(kind, '')} {title}".strip(), MAX_HEADER), "plain_text"
            ),
        },
        {"type": "context", "elements": [_text(copy.STORM_NOTE)]},
    ]
    for card in cards:
        customer, _, rest = summary_line(card, with_title=False).partition(" · ")
        line = " · ".join(part for part in (f"*{esc(customer)}*", esc(rest)) if part.strip("*"))
        if card.facts.customer_id:
            line += f" · <{dashboard_customer_url(card.facts.customer_id, livemode=card.facts.livemode)}|{copy.BTN_OPEN_IN_STRIPE}>"
        extra = {}
        if card.state == "open" and card.facts.customer_id:
            value = AlertRef(alert=card.alert_id).encode()
            extra["accessory"] = _button(
                copy.BTN_CREATE_TASK_SHORT, ActionId.CREATE_TASK, value=value
            )
        blocks.append(_section(line, **extra))
    return {"text": title, "blocks": blocks}

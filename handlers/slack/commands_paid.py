"""`/paid QUERY [public]`: what the store knows about a customer, privately by default.

The query is data: `storage.lookup.parse_query` cleans and classifies it and it only ever
reaches SQL as a bound parameter; empty or garbled text gets the usage. One match gets
the whole answer; several get a compact list with a "Show" button each (re-checked against
the store when clicked, like every button); none gets close suggestions. Only a customer
answer is ever posted for everyone, and only where `AccessPolicy.may_post_in` allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.context.respond import Respond
from slack_sdk import WebClient
from sqlmodel import Session

from bot.settings import Settings
from handlers.alerts.followup import DEFAULT_DUE_BUSINESS_DAYS, add_business_days
from handlers.slack import blocks as alert_blocks
from handlers.slack import command_copy as words
from handlers.slack import paid_blocks
from handlers.slack.access import AccessPolicy
from handlers.slack.command_ids import Command, CommandAction, CustomerRef
from handlers.slack.commands import Gone, NotAllowed, Reply, Usage, answering, split_public
from handlers.slack.deps import SlackDeps
from handlers.slack.paid_blocks import Message, MrrChange
from handlers.slack.refs import InvalidRef, TaskModalRef
from storage.customer_summary import CustomerSummary, lookup_customers
from storage.db import read_scope
from storage.lookup import InvalidQuery
from storage.money import round_minor
from storage.revenue import customer_mrr_history
from storage.tasks import open_tasks

MAX_TASKS = 5


@dataclass(frozen=True, slots=True)
class PaidAnswer:
    message: Message
    is_customer: bool  # only an answer about a customer may be posted for everyone


def paid_answer(
    session: Session, *, text: str, now: datetime, settings: Settings, asked_by: str | None = None
) -> PaidAnswer:
    """Parse, look up, render: the whole server-side work of `/paid` (bench/paid.py times it)."""
    if not text.strip():
        raise Usage(words.PAID_USAGE)
    try:
        answer = lookup_customers(
            session=session, text=text, now=now, default_currency=settings.reporting_currency
        )
    except InvalidQuery as exc:
        raise Usage(f"{words.PAID_BAD_QUERY.format(reason=exc)}\n{words.PAID_USAGE}") from exc
    if len(answer.matches) == 1:
        message = customer_answer(session, answer.matches[0], asked_by=asked_by)
        return PaidAnswer(message, True)
    if answer.matches:
        message = paid_blocks.several_message(
            answer.matches,
            query=answer.query.text,
            total=answer.total,
            capped=answer.total_is_capped,
        )
        return PaidAnswer(message, False)
    return PaidAnswer(paid_blocks.no_match_message(answer.query.text, answer.suggestions), False)


def customer_answer(
    session: Session, summary: CustomerSummary, *, asked_by: str | None = None
) -> Message:
    tasks = open_tasks(session=session, customer_id=summary.customer_id, limit=MAX_TASKS)
    return paid_blocks.customer_message(
        summary, tasks=tasks, mrr_change=latest_mrr_change(session, summary), asked_by=asked_by
    )


def latest_mrr_change(session: Session, summary: CustomerSummary) -> MrrChange | None:
    """From the MRR ledger, when its newest entry agrees with the MRR shown (the ledger can
    lag the store by an event, and a history that contradicts the figure helps nobody)."""
    for entry in customer_mrr_history(session, customer_id=summary.customer_id):
        if entry.currency != summary.mrr.currency:
            continue
        if round_minor(entry.mrr) != summary.mrr.amount or entry.previous == entry.mrr:
            return None
        return MrrChange(since=entry.since, previous=entry.previous)
    return None


def one_customer(
    session: Session, customer_id: str, *, now: datetime, settings: Settings
) -> CustomerSummary:
    """The customer a button names, as the store has it now (the id is looked up as data)."""
    answer = lookup_customers(
        session=session, text=customer_id, now=now, default_currency=settings.reporting_currency
    )
    match = [summary for summary in answer.matches if summary.customer_id == customer_id]
    if not match:
        raise Gone(words.PAID_CUSTOMER_GONE)
    return match[0]


def task_modal_for(summary: CustomerSummary, *, user_id: str, today: date) -> dict[str, Any]:
    """The alerts' own "Create follow-up task" modal, about this customer."""
    name = paid_blocks.display_name(summary)
    return alert_blocks.task_modal(
        ref=TaskModalRef(customer=summary.customer_id),
        about=words.TASK_ABOUT.format(customer=name, status=words.STATUS_LABEL[summary.status]),
        title=words.TASK_TITLE.format(customer=name),
        assignee=user_id,
        due=add_business_days(today, DEFAULT_DUE_BUSINESS_DAYS),
    )


def _customer_ref(body: dict[str, Any]) -> CustomerRef:
    try:
        return CustomerRef.decode((body.get("actions") or [{}])[0].get("value"))
    except InvalidRef as exc:
        raise Gone(words.STALE) from exc


def register(app: App, deps: SlackDeps) -> None:
    policy = AccessPolicy.from_settings(deps.settings)

    @app.command(Command.PAID.value)
    def paid_command(ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond) -> None:
        ack()
        reply = Reply.to(body, client, respond)
        with answering(reply, what="paid"):
            query, public = split_public(body.get("text") or "")
            if public and not policy.may_post_in(reply.channel_id):
                raise NotAllowed(words.PUBLIC_NOT_HERE.format(channels=policy.channel_list()))
            with read_scope(deps.engine) as session:
                answer = paid_answer(
                    session,
                    text=query,
                    now=deps.clock(),
                    settings=deps.settings,
                    asked_by=reply.user_id if public else None,
                )
            send = reply.public if public and answer.is_customer else reply.private
            send(answer.message["text"], answer.message["blocks"])

    @app.action(CommandAction.PAID_SHOW.value)
    def show_clicked(
        ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond | None
    ) -> None:
        ack()
        reply = Reply.to(body, client, respond)
        with answering(reply, what="paid_show"):
            ref = _customer_ref(body)
            with read_scope(deps.engine) as session:
                summary = one_customer(
                    session, ref.customer, now=deps.clock(), settings=deps.settings
                )
                message = customer_answer(session, summary)
            # A private list is replaced by the answer; a list in the channel stays for others.
            on_private_list = bool((body.get("container") or {}).get("is_ephemeral"))
            reply.private(message["text"], message["blocks"], replace=on_private_list)

    @app.action(CommandAction.PAID_CREATE_TASK.value)
    def create_task_clicked(
        ack: Ack, body: dict[str, Any], client: WebClient, respond: Respond | None
    ) -> None:
        ack()
        reply = Reply.to(body, client, respond)
        with answering(reply, what="paid_create_task"):
            ref = _customer_ref(body)
            with read_scope(deps.engine) as session:
                summary = one_customer(
                    session, ref.customer, now=deps.clock(), settings=deps.settings
                )
            view = task_modal_for(summary, user_id=reply.user_id, today=deps.today())
            client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.action(CommandAction.PAID_OPEN_IN_STRIPE.value)
    def link_clicked(ack: Ack) -> None:
        ack()  # a link button: the browser opens Stripe; Slack still expects an answer

"""Trial-ending reminders: once a day, one message listing the trials that end within
`BILLBOT_TRIAL_WINDOW_DAYS`, to `SLACK_CHANNEL_TRIAL` (else `SLACK_ALERT_CHANNEL`).

A trial is listed once per trial end: the posted key is `trial-reminder:{subscription}:{end}`,
so a trial whose end moves (an extended trial) is listed again, and nothing else is. With
nothing new to list, nothing is posted.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlmodel import Session

from bot.settings import Settings
from handlers.alerts.facts import subscription_facts, subscription_items
from handlers.alerts.followup import ClickRefused, add_business_days
from handlers.alerts.render import task_info
from handlers.alerts.routing import CONSOLE_CHANNEL
from handlers.jobs import Hook, JobResult, post_once
from handlers.slack import blocks, copy
from handlers.slack.job_blocks import (
    MAX_ENTRIES,
    TrialEntry,
    plural,
    trial_reminder_message,
)
from handlers.slack.mrkdwn import clip, esc, mrr_text, slack_time
from handlers.slack.refs import InvalidRef, TaskModalRef, TrialRef
from storage.db import read_scope
from storage.jobs import posted_keys
from storage.models.billing import Subscription
from storage.reminders import trials_ending
from storage.tasks import open_tasks

JOB = "trial-reminders"
TRIAL_GONE = "That trial is no longer in billbot's records, so nothing changed."
MODAL_ABOUT = "Trial ending: *{customer}* · {plan} · {mrr} if it converts · ends {when}"
TASK_WHAT = "Trial ending"


def trial_channel(settings: Settings) -> str | None:
    channel = settings.slack_channel_trial or settings.slack_alert_channel
    if channel is None and not settings.slack_enabled:
        return CONSOLE_CHANNEL
    return channel


def reminder_key(subscription_id: str, trial_end: datetime) -> str:
    return f"trial-reminder:{subscription_id}:{int(trial_end.timestamp())}"


def trial_entry(session: Session, subscription: Subscription) -> TrialEntry:
    """What the list says about one trial (its MRR as if it were paying)."""
    items = subscription_items(session, subscription.id)
    facts = subscription_facts(session, subscription, items, as_active=True)
    tasks = open_tasks(session=session, customer_id=subscription.customer_id, limit=1)
    if subscription.trial_end is None:
        raise ValueError("trialing subscription without a trial end")
    return TrialEntry(
        subscription_id=subscription.id,
        customer_id=subscription.customer_id,
        customer=facts.customer_name or facts.customer_email or subscription.customer_id,
        plan=facts.plan,
        mrr=facts.mrr,
        currency=facts.mrr_currency,
        trial_end=subscription.trial_end,
        has_payment_method=facts.has_payment_method,
        livemode=subscription.livemode,
        task=task_info(tasks[0]) if tasks else None,
    )


def send_trial_reminders(
    *, engine: Engine, settings: Settings, now: datetime, after_enqueue: Hook | None = None
) -> JobResult:
    result = JobResult(JOB)
    channel = trial_channel(settings)
    if channel is None:
        result.notes.append("no channel: set SLACK_CHANNEL_TRIAL or SLACK_ALERT_CHANNEL")
        return result
    window = settings.billbot_trial_window_days
    entries, already = _new_entries(engine, now=now, window=timedelta(days=window), result=result)
    if already:
        result.skipped.append(f"{plural(already, 'trial')} already reminded about")
    for first in range(0, len(entries), MAX_ENTRIES):
        posted = post_once(
            engine=engine,
            job=JOB,
            items=entries[first : first + MAX_ENTRIES],
            build=lambda chosen: trial_reminder_message(chosen, window_days=window),
            channel=channel,
            now=now,
            after_enqueue=after_enqueue,
        )
        if posted:
            ids = ", ".join(entry.subscription_id for entry in posted)
            result.posted.append(
                f"trial reminder to {channel} listing {plural(len(posted), 'trial')} ({ids})"
            )
    return result


def _new_entries(
    engine: Engine, *, now: datetime, window: timedelta, result: JobResult
) -> tuple[list[tuple[str, TrialEntry]], int]:
    """(key, entry) for each trial not reminded about yet; and how many were, before."""
    entries: list[tuple[str, TrialEntry]] = []
    with read_scope(engine) as session:
        trials = trials_ending(session=session, start=now, end=now + window)
        keys = {sub.id: reminder_key(sub.id, sub.trial_end) for sub in trials if sub.trial_end}
        seen = posted_keys(session=session, keys=list(keys.values()))
        for subscription in trials:
            if keys.get(subscription.id) in seen:
                continue
            try:
                entries.append((keys[subscription.id], trial_entry(session, subscription)))
            except Exception as exc:  # one odd trial must not keep the others from the list
                result.fail(subscription.id, exc)
    return entries, len(seen)


# -- the "Create follow-up task" button ------------------------------------------------------


def trial_task_modal(
    session: Session, *, value: str | None, user_id: str, today: date, zone: ZoneInfo
) -> dict[str, Any]:
    """The task modal for a trial in the list (read only: the task is stored on submit)."""
    try:
        ref = TrialRef.decode(value)
    except InvalidRef as exc:
        raise ClickRefused(copy.STALE_BUTTON) from exc
    subscription = session.get(Subscription, ref.subscription)
    if subscription is None or subscription.customer_id != ref.customer:
        raise ClickRefused(TRIAL_GONE)
    entry = trial_entry(session, subscription)
    due = add_business_days(today, 2)
    ends_on = entry.trial_end.astimezone(zone).date()
    if today <= ends_on < due:
        due = ends_on
    about = MODAL_ABOUT.format(
        customer=esc(clip(entry.customer, 200)),
        plan=esc(entry.plan or copy.NO_PLAN),
        mrr=mrr_text(entry.mrr, entry.currency),
        when=slack_time(entry.trial_end),
    )
    title = copy.TASK_TITLE.format(what=TASK_WHAT, customer=entry.customer)
    return blocks.task_modal(
        ref=TaskModalRef(customer=ref.customer),
        about=about,
        title=clip(title, copy.TASK_TITLE_MAX),
        assignee=user_id,
        due=due,
    )

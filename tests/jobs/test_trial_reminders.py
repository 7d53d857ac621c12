"""Trial-ending reminders against SQLite and PostgreSQL: one list, once per trial end."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from handlers.jobs.trial_reminders import JOB, reminder_key, send_trial_reminders
from handlers.slack import copy
from handlers.slack.ids import ActionId
from handlers.slack.job_blocks import PAYMENT_METHOD, PAYMENT_METHOD_UNKNOWN
from handlers.slack.refs import TrialRef
from storage.db import session_scope
from storage.models import PostedItem
from tests.jobs.conftest import NOW, add_task, add_trial, job_settings, move_trial, outbox, rows
from tests.slack.factories import add_subscription


def sections(message) -> list[dict]:
    return [b for b in message.payload["blocks"] if b["type"] == "section"]


def test_nothing_ending_posts_nothing(engine, settings):
    add_trial(engine, 1, ends=NOW + timedelta(days=10))  # outside the 3-day window
    result = send_trial_reminders(engine=engine, settings=settings, now=NOW)
    assert outbox(engine) == [] and rows(engine, PostedItem) == []
    assert result.posted == [] and result.lines() == ["nothing to do"]


def test_one_message_lists_the_trials_in_the_window_soonest_first(engine, settings):
    later = add_trial(engine, 1, ends=NOW + timedelta(days=2, hours=5), has_payment_method=False)
    sooner = add_trial(engine, 2, ends=NOW + timedelta(hours=20), name="Globex <Corp>")
    add_trial(engine, 3, ends=NOW + timedelta(days=4))  # beyond BILLBOT_TRIAL_WINDOW_DAYS=3
    add_trial(engine, 4, ends=NOW - timedelta(hours=1))  # already ended
    with session_scope(engine) as session:
        add_subscription(session, id="sub_paying", customer_id="cus_t1", status="active")

    result = send_trial_reminders(engine=engine, settings=settings, now=NOW)

    [message] = outbox(engine)
    assert message.channel == "#trials" and message.kind == JOB
    assert [s["block_id"] for s in sections(message)] == [f"trial:{sooner}", f"trial:{later}"]
    first, second = (s["text"]["text"] for s in sections(message))
    assert "*Globex &lt;Corp&gt;* · Pro (monthly)" in first
    assert "*$49.00/mo* if it converts" in first
    assert f"<!date^{int((NOW + timedelta(hours=20)).timestamp())}^" in first
    assert PAYMENT_METHOD[True] in first and PAYMENT_METHOD[False] in second
    button = sections(message)[0]["accessory"]
    assert button["action_id"] == ActionId.TRIAL_CREATE_TASK
    assert button["text"]["text"] == copy.BTN_CREATE_TASK
    assert TrialRef.decode(button["value"]) == TrialRef(customer="cus_t2", subscription=sooner)
    assert "2 trials" in message.payload["text"]
    assert {r.key for r in rows(engine, PostedItem)} == {
        reminder_key(sooner, NOW + timedelta(hours=20)),
        reminder_key(later, NOW + timedelta(days=2, hours=5)),
    }
    assert result.posted == [f"trial reminder to #trials listing 2 trials ({sooner}, {later})"]


def test_repeat_runs_post_once_and_a_moved_trial_end_is_listed_again(engine, settings):
    first = add_trial(engine, 1, ends=NOW + timedelta(days=1))
    add_trial(engine, 2, ends=NOW + timedelta(days=2))
    send_trial_reminders(engine=engine, settings=settings, now=NOW)
    again = send_trial_reminders(engine=engine, settings=settings, now=NOW + timedelta(hours=1))
    assert len(outbox(engine)) == 1
    assert again.posted == [] and again.skipped == ["2 trials already reminded about"]

    move_trial(engine, first, ends=NOW + timedelta(days=2, hours=12))  # the trial was extended
    moved = send_trial_reminders(engine=engine, settings=settings, now=NOW + timedelta(days=1))
    messages = outbox(engine)
    assert len(messages) == 2
    assert [s["block_id"] for s in sections(messages[1])] == [f"trial:{first}"]
    assert moved.skipped == ["1 trial already reminded about"]


def test_one_odd_trial_is_logged_and_skipped_and_the_rest_still_go_out(engine, settings, caplog):
    add_trial(engine, 1, ends=NOW + timedelta(days=1))
    odd = add_trial(
        engine,
        2,
        ends=NOW + timedelta(days=1),
        items=[{"plan_name": "Odd", "unit_amount_decimal": "n/a"}],
    )
    add_trial(engine, 3, ends=NOW + timedelta(days=2))
    result = send_trial_reminders(engine=engine, settings=settings, now=NOW)
    [message] = outbox(engine)
    assert [s["block_id"] for s in sections(message)] == ["trial:sub_t1", "trial:sub_t3"]
    assert result.failed == [f"{odd}: InvalidOperation"]
    assert any(r.getMessage() == "job.item_failed" and r.item == odd for r in caplog.records)
    assert "Trial Customer 2" not in caplog.text  # ids in logs, never customer data


def test_a_crash_after_enqueueing_leaves_nothing_queued_or_recorded(engine, settings):
    add_trial(engine, 1, ends=NOW + timedelta(days=1))

    def crash() -> None:
        raise RuntimeError("process died between enqueueing and recording")

    with pytest.raises(RuntimeError):
        send_trial_reminders(engine=engine, settings=settings, now=NOW, after_enqueue=crash)
    assert outbox(engine) == [] and rows(engine, PostedItem) == []
    send_trial_reminders(engine=engine, settings=settings, now=NOW)  # the retry posts, once
    send_trial_reminders(engine=engine, settings=settings, now=NOW)
    assert len(outbox(engine)) == 1 and len(rows(engine, PostedItem)) == 1


def test_the_customers_open_task_and_unknown_payment_method_are_shown(engine, settings):
    add_trial(engine, 1, ends=NOW + timedelta(days=1), has_payment_method=None)
    add_task(
        engine,
        assignee="U0OWNER",
        due=date(2026, 3, 30),
        title="Offer a call",
        customer_id="cus_t1",
    )
    send_trial_reminders(engine=engine, settings=settings, now=NOW)
    [section] = sections(outbox(engine)[0])
    assert PAYMENT_METHOD_UNKNOWN in section["text"]["text"]
    assert "<@U0OWNER>" in section["text"]["text"] and "_Offer a call_" in section["text"]["text"]


def test_alert_channel_is_the_fallback_and_no_channel_posts_nothing(engine):
    add_trial(engine, 1, ends=NOW + timedelta(days=1))
    fallback = job_settings(slack_channel_trial=None)
    send_trial_reminders(engine=engine, settings=fallback, now=NOW)
    assert [m.channel for m in outbox(engine)] == ["#billing-alerts"]
    nowhere = job_settings(
        slack_channel_trial=None, slack_alert_channel=None, slack_bot_token="xoxb-x"
    )
    add_trial(engine, 2, ends=NOW + timedelta(days=1))
    result = send_trial_reminders(engine=engine, settings=nowhere, now=NOW)
    assert len(outbox(engine)) == 1 and "no channel" in result.notes[0]

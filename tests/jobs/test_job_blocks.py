"""The job messages as pure functions: Slack's limits hold for long lists."""

from __future__ import annotations

from datetime import date, timedelta

from handlers.jobs.trial_reminders import send_trial_reminders
from handlers.slack.job_blocks import MAX_ENTRIES, NudgeEntry, nudge_message
from tests.jobs.conftest import NOW, add_trial, job_settings, outbox


def test_a_long_trial_list_is_split_into_messages_within_slacks_block_limit(sqlite_engine):
    for n in range(MAX_ENTRIES + 2):
        add_trial(sqlite_engine, n, ends=NOW + timedelta(hours=n + 1))
    result = send_trial_reminders(engine=sqlite_engine, settings=job_settings(), now=NOW)
    messages = outbox(sqlite_engine)
    assert [len(m.payload["blocks"]) for m in messages] == [2 + 2 * MAX_ENTRIES, 2 + 2 * 2]
    assert all(len(m.payload["blocks"]) <= 50 for m in messages)
    assert len(result.posted) == 2
    assert send_trial_reminders(engine=sqlite_engine, settings=job_settings(), now=NOW).posted == []


def test_nudge_lists_the_most_overdue_first_and_stays_under_the_limit():
    today = date(2026, 3, 27)
    entries = [NudgeEntry(n, f"Task {n}", today - timedelta(days=n % 5)) for n in range(1, 60)]
    message = nudge_message(entries, today=today)
    assert len(message["blocks"]) <= 50
    assert message["blocks"][1]["block_id"] == "task:4"  # 4 days overdue, lowest id
    assert (
        message["blocks"][-1]["elements"][0]["text"]
        == f"…and {59 - MAX_ENTRIES} more, not shown here."
    )
    assert "59 follow-up tasks" in message["text"]

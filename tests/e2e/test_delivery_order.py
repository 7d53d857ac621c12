"""The same customer life delivered as Stripe really delivers: late, twice, in any order, many
events in one second. The worker applies each delivery as it arrives (as the embedded worker
does), so the store really sees events out of order. Two stories with the same shape live in
one database: one delivered in order, one delivered badly; their stored rows (ids named by
role) and their MRR must end the same, and Slack must never get a second post for an alert.
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from tests.e2e import story as life
from tests.e2e.harness import Billbot, chat_calls, running_billbot, stored_alerts
from tests.e2e.state import ledger_lines, ledger_total, store_state
from tests.factories import API_VERSIONS


def deliver_in_order(bot: Billbot, story: life.Story) -> None:
    for step in story.steps:
        bot.deliver_all(step.events)
        bot.apply()
    bot.settle()


def shuffled_with_duplicates(events: list[dict], rng: random.Random) -> list[dict]:
    """Every event at least once, a third of them two or three times, in a random order."""
    deliveries = list(events)
    deliveries += [e for e in events if rng.random() < 0.33 for _ in range(rng.randint(1, 2))]
    rng.shuffle(deliveries)
    return deliveries


def shuffled_within_seconds(events: list[dict], rng: random.Random) -> list[dict]:
    """Same-second ties in a random order (nothing can order them), seconds in order."""
    by_second: dict[int, list[dict]] = {}
    for event in events:
        by_second.setdefault(event["created"], []).append(event)
    ordered = []
    for second in sorted(by_second):
        tie = list(by_second[second])
        rng.shuffle(tie)
        ordered += tie
    return ordered


def deliver_one_by_one(bot: Billbot, deliveries: list[dict]) -> Counter:
    answers: Counter = Counter()
    for event in deliveries:
        response = bot.deliver(event)
        assert response.status_code == 200, response.text
        answers["duplicate" if response.json().get("duplicate") else "new"] += 1
        bot.apply()  # as the embedded worker does: each event applied as it arrives
    bot.settle()
    return answers


def slack_is_one_message_per_alert(bot: Billbot) -> None:
    calls = chat_calls(bot.slack)
    posts = [c for c in calls if c.method == "post"]
    alerts = [a for a in stored_alerts(bot.engine) if a.message_ts is not None]
    assert len(posts) == len(alerts) == len({(c.channel, c.ts) for c in posts})
    assert sorted(c.ts for c in posts) == sorted(a.message_ts for a in alerts)
    posted = {c.ts for c in posts}
    assert all(c.ts in posted for c in calls if c.method in ("update", "reply"))


@pytest.mark.parametrize("seed", [7, 2026])
@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_shuffled_duplicated_delivery_ends_like_in_order_delivery(engine, api_version, seed):
    in_order, shuffled = life.customer_life(api_version), life.customer_life(api_version)
    rng = random.Random(seed)
    deliveries = shuffled_with_duplicates(shuffled.events, rng)
    with running_billbot(engine) as bot:
        deliver_in_order(bot, in_order)
        posts_in_order = len([c for c in chat_calls(bot.slack) if c.method == "post"])
        answers = deliver_one_by_one(bot, deliveries)
        slack_is_one_message_per_alert(bot)
        posts_shuffled = (
            len([c for c in chat_calls(bot.slack) if c.method == "post"]) - posts_in_order
        )
    assert answers == {
        "new": len(shuffled.events),
        "duplicate": len(deliveries) - len(shuffled.events),
    }
    assert store_state(engine, shuffled) == store_state(engine, in_order)
    assert ledger_total(engine, shuffled) == ledger_total(engine, in_order) == 0
    assert posts_shuffled <= posts_in_order


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_same_second_ties_in_any_order_give_the_same_rows_ledger_and_slack(engine, api_version):
    in_order, tied = life.customer_life(api_version), life.customer_life(api_version)
    deliveries = shuffled_within_seconds(tied.events, random.Random(api_version))
    assert [e["type"] for e in deliveries] != [
        e["type"] for e in tied.events
    ]  # the shuffle did shuffle
    with running_billbot(engine) as bot:
        deliver_in_order(bot, in_order)
        first = len(chat_calls(bot.slack))
        deliver_one_by_one(bot, deliveries + deliveries[::3])  # and some again, late
        calls = chat_calls(bot.slack)
        slack_is_one_message_per_alert(bot)
        shown = what_channels_show(bot, calls[first:]), what_channels_show(bot, calls[:first])
    assert store_state(engine, tied) == store_state(engine, in_order)
    assert ledger_lines(engine, tied) == ledger_lines(engine, in_order)
    assert shown[0] == shown[1]


def what_channels_show(bot: Billbot, calls: list) -> dict[str, list[tuple[str, int]]]:
    """Per channel, each alert message as it reads now and how many replies its thread has.
    (How many in-between updates were sent depends on the sender's timing: a queued update
    is superseded by a newer one.)"""
    replies = Counter(c.ts for c in calls if c.method == "reply")
    channels: dict[str, list[tuple[str, int]]] = {}
    for call in calls:
        if call.method == "post":
            final = bot.slack.messages[call.channel][call.ts]["text"]
            channels.setdefault(call.channel, []).append((final, replies[call.ts]))
    return channels

"""A customer's whole life, end to end: signed webhooks over HTTP into the real app, the real
worker with the standard reactions, the app's own sender posting to the loopback Slack API,
and the `billbot lookup` / `billbot revenue` commands reading the result. After every step
the test checks what a user would see: the customer's summary, and exactly which Slack calls
were made (post, update in place, thread reply) in which channel, saying what.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select

from storage.db import read_scope
from storage.models.ledger import MrrMovement, from_ledger_units
from tests.e2e import story as life
from tests.e2e.harness import SlackCall, chat_calls, running_billbot, url_of
from tests.factories import API_VERSIONS


@dataclass(frozen=True)
class Expect:
    """One Slack call: post, update or reply, in a channel (by name), mentioning `words`."""

    method: str
    channel: str
    words: tuple[str, ...]
    thread_of: int | None = None  # for updates and replies: index of the post they belong to


def expected_calls() -> dict[str, list[Expect]]:
    """In both API shapes: from basil on, the decline reason is found without a charge link."""
    decline = f"{life.DECLINE_MESSAGE} ({life.DECLINE_CODE})"
    grace = "Grace Hopper"
    return {
        "signup": [],
        "trial": [],
        "trial_will_end": [Expect("post", "#trials", ("Trial ending", grace, "$49.00/mo"))],
        "converted": [Expect("post", "#trials", ("Trial converted to paid", grace, "$49.00/mo"))],
        "upgrade": [Expect("post", "#billing", ("Upgrade", grace, "$49.00/mo → $198.00/mo"))],
        "failed_1": [Expect("post", "#collections", ("Payment failed", grace, "$104.30", "attempt 1", decline))],
        "failed_2": [
            Expect("update", "#collections", ("Payment failed", grace, "$104.30", "attempt 2"), thread_of=3),
            Expect("reply", "#collections", ("Attempt 2 failed", decline, "2026-03-25 01:00 UTC"), thread_of=3),
        ],
        "recovered": [
            Expect("update", "#collections", ("Payment recovered", grace, "$104.30"), thread_of=3),
            Expect("reply", "#collections", ("Recovered", "$104.30"), thread_of=3),
        ],
        "cancel_scheduled": [Expect("post", "#churn", ("Cancellation scheduled", grace, "$198.00/mo"))],
        "deleted": [
            Expect("update", "#churn", ("Subscription canceled", grace, "$198.00/mo"), thread_of=4),
            Expect("reply", "#churn", ("ended", "$198.00/mo"), thread_of=4),
        ],
        "refund": [Expect("post", "#billing", ("Refund", grace, "$50.00"))],
    }  # fmt: skip


@dataclass(frozen=True)
class Seen:
    """What `billbot lookup --json` should say about the customer after a step."""

    status: str
    mrr: int
    lifetime_value: int
    open_invoices: tuple[tuple[int, int], ...] = ()  # (attempt_count, amount_remaining)


AFTER = {
    "signup": Seen("none", 0, 0),
    "trial": Seen("trialing", 0, 0),
    "trial_will_end": Seen("trialing", 0, 0),
    "converted": Seen("current", 4900, 4900),
    "upgrade": Seen("current", 19800, 4900),
    "failed_1": Seen("overdue", 19800, 4900, ((1, life.PRORATION),)),
    "failed_2": Seen("overdue", 19800, 4900, ((2, life.PRORATION),)),
    "recovered": Seen("current", 19800, 4900 + life.PRORATION),
    "cancel_scheduled": Seen("current", 0, 4900 + life.PRORATION),
    "deleted": Seen("cancelled", 0, 4900 + life.PRORATION),
    "refund": Seen("cancelled", 0, 4900 + life.PRORATION - life.REFUNDED),
}


def check_calls(
    new: list[SlackCall], expected: list[Expect], posts: list[SlackCall], slack
) -> None:
    assert [(c.method, c.channel) for c in new] == [
        (e.method, slack.channel_id(e.channel)) for e in expected
    ], [c.text for c in new]
    for call, expect in zip(new, expected, strict=True):
        seen = call.text + call.blocks
        missing = [word for word in expect.words if word not in seen]
        assert not missing, f"{call.method} in {expect.channel} lacks {missing}: {call.text}"
        if expect.thread_of is not None:
            assert call.ts == posts[expect.thread_of].ts  # the alert's own message, not a new one


def check_lookup(answer: dict, seen: Seen, story: life.Story) -> None:
    [match] = answer["matches"]
    assert (match["customer_id"], match["name"], match["email"]) == (
        story.customer_id, "Grace Hopper", "grace@navy.example",
    )  # fmt: skip
    assert (match["status"], match["mrr"], match["lifetime_value"]) == (
        seen.status,
        {"amount": seen.mrr, "currency": "usd"},
        {"amount": seen.lifetime_value, "currency": "usd"},
    )
    assert [(i["attempt_count"], i["amount_remaining"]) for i in match["open_invoices"]] == list(
        seen.open_invoices
    )
    for invoice in match["open_invoices"]:
        assert invoice["id"] == story.invoice_ids[1] and invoice["currency"] == "usd"


@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_a_customer_life_through_webhooks_worker_slack_and_commands(
    engine, api_version, billbot_json
):
    story = life.customer_life(api_version)
    expected = expected_calls()
    database = {"DATABASE_URL": url_of(engine)}
    with running_billbot(engine) as bot:
        for step in story.steps:
            before = len(chat_calls(bot.slack))
            bot.happen(step.events)
            calls = chat_calls(bot.slack)
            posts = [c for c in calls if c.method == "post"]
            check_calls(calls[before:], expected[step.name], posts, bot.slack)
            check_lookup(
                billbot_json("lookup", story.customer_id, **database), AFTER[step.name], story
            )
        assert {call.method for call in bot.slack.calls} == {"chat.postMessage", "chat.update"}
        assert all(call.status == 200 and call.response["ok"] for call in bot.slack.calls)

    [match] = billbot_json("lookup", "grace@navy.example", **database)["matches"]
    [subscription] = match["subscriptions"]
    assert (subscription["status"], subscription["plan"], subscription["quantity"]) == (
        "canceled",
        "Pro",
        2,
    )
    assert (
        subscription["ended_at"] == "2026-03-30T09:00:00Z" and subscription["cancel_at_period_end"]
    )
    assert match["last_payment"] == {
        "id": story.charge_ids[3], "amount": life.PRORATION, "currency": "usd", "at": "2026-03-23T09:00:00Z",
    }  # fmt: skip

    by_step = {event["id"]: step.name for step in story.steps for event in step.events}
    assert [(m.kind, from_ledger_units(m.amount), by_step[m.event_id]) for m in ledger(engine)] == [
        ("new", 4900, "converted"),
        ("expansion", 14900, "upgrade"),
        ("churn", -19800, "cancel_scheduled"),
    ]
    report = billbot_json("revenue", "--month", "2026-03", **database)
    assert report["period"] == "2026-03" and report["currency"] == "usd"
    assert (report["mrr"], report["active_customers"], report["churn_rate"]) == (0, 0, 1.0)
    assert report["movements"] == {
        "new": {"amount": 4900, "count": 1},
        "expansion": {"amount": 14900, "count": 1},
        "contraction": {"amount": 0, "count": 0},
        "churn": {"amount": -19800, "count": 1},
        "reactivation": {"amount": 0, "count": 0},
    }


def ledger(engine) -> list[MrrMovement]:
    with read_scope(engine) as session:
        rows = list(
            session.exec(
                select(MrrMovement).order_by(MrrMovement.occurred_at, MrrMovement.id)
            ).scalars()
        )
        session.expunge_all()
        return rows

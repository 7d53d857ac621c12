"""Issue 5: "test the ledger against a replayed sequence of real-shaped events (both API
shapes), and that replaying it twice changes nothing", through `billbot replay FILE` as an
operator runs it, with Slack fully configured: history never posts to Slack, while a live
event that follows it does, once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from storage.models.ledger import from_ledger_units
from tests.e2e import story as life
from tests.e2e.harness import (
    BOT_TOKEN,
    CHANNELS,
    SIGNING_SECRET,
    WEBHOOK_SECRET,
    chat_calls,
    outbox_statuses,
    running_billbot,
    stored_alerts,
    url_of,
)
from tests.e2e.state import ledger_event_ids, ledger_lines, store_state
from tests.factories import API_VERSIONS
from tests.fakes.slack_api import FakeSlackApi

MOVEMENTS_IN_MARCH = {
    "new": {"amount": 4900, "count": 1},
    "expansion": {"amount": 14900, "count": 1},
    "contraction": {"amount": 0, "count": 0},
    "churn": {"amount": -19800, "count": 1},
    "reactivation": {"amount": 0, "count": 0},
}


def write_json_lines(path: Path, events: list[dict]) -> Path:
    path.write_text("".join(json.dumps(event) + "\n" for event in events))
    return path


def write_events_page(path: Path, events: list[dict]) -> Path:
    """What `GET /v1/events` returns: newest first."""
    page = {"object": "list", "data": events[::-1], "has_more": False, "url": "/v1/events"}
    path.write_text(json.dumps(page, indent=2))
    return path


def operator_env(engine, slack: FakeSlackApi) -> dict[str, str]:
    """Everything configured, Slack included: replay must stay quiet by itself."""
    env = {
        "DATABASE_URL": url_of(engine),
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": slack.base_url,
    }
    env.update({name.upper(): channel for name, channel in CHANNELS.items()})
    return env


@pytest.mark.parametrize("first_format", ["jsonl", "page"])
@pytest.mark.parametrize("api_version", API_VERSIONS)
def test_replayed_history_builds_the_ledger_posts_nothing_and_replaying_again_changes_nothing(
    engine, api_version, first_format, billbot, billbot_json, tmp_path
):
    story = life.customer_life(api_version)
    history = [e for step in story.steps if step.name != "refund" for e in step.events]
    live = story.step("refund").events
    writers = {"jsonl": write_json_lines, "page": write_events_page}
    second_format = "page" if first_format == "jsonl" else "jsonl"
    first_file = writers[first_format](tmp_path / f"history.{first_format}", history)
    again_file = writers[second_format](tmp_path / f"everything.{second_format}", story.events)

    with FakeSlackApi(token=BOT_TOKEN) as slack:
        env = operator_env(engine, slack)
        code, out, err = billbot("replay", str(first_file), **env)
        assert code == 0, err
        assert f"{len(history)} new, 0 duplicate, 0 invalid" in out
        assert f"applied {len(history)}, ignored 0, retrying 0, dead 0" in out
        assert stored_alerts(engine) == [] and outbox_statuses(engine) == {}

        by_step = {event["id"]: step.name for step in story.steps for event in step.events}
        lines = ledger_lines(engine, story)
        assert [(kind, from_ledger_units(amount)) for kind, amount, _ in lines] == [
            ("new", 4900), ("expansion", 14900), ("churn", -19800),
        ]  # fmt: skip
        assert [by_step[e] for e in ledger_event_ids(engine, story)] == [
            "converted",
            "upgrade",
            "cancel_scheduled",
        ]
        report = billbot_json("revenue", "--month", "2026-03", **env)
        assert (report["movements"], report["mrr"], report["churn_rate"]) == (
            MOVEMENTS_IN_MARCH,
            0,
            1.0,
        )
        [customer] = billbot_json("lookup", story.customer_id, **env)["matches"]
        assert (customer["status"], customer["lifetime_value"]["amount"]) == (
            "cancelled",
            4900 + life.PRORATION,
        )

        with running_billbot(
            engine
        ) as bot:  # the real app, its sender running: history stays quiet
            bot.settle()
            assert bot.slack.calls == []
            bot.happen(live)  # then Stripe sends something new, live
            [refund] = chat_calls(bot.slack)
            assert (refund.method, refund.channel) == ("post", bot.slack.channel_id("#billing"))
            assert "Refund: Grace Hopper · $50.00" in refund.text
        before = store_state(engine, story), lines

        code, out, err = billbot("replay", str(again_file), **env)
        assert code == 0, err
        assert f"0 new, {len(story.events)} duplicate, 0 invalid" in out
        assert "applied 0, ignored 0, retrying 0, dead 0" in out
        assert (store_state(engine, story), ledger_lines(engine, story)) == before
        assert (
            billbot_json("revenue", "--month", "2026-03", **env)["movements"] == MOVEMENTS_IN_MARCH
        )
        with running_billbot(engine) as bot:
            bot.settle()
            assert bot.slack.calls == []
        assert slack.calls == []  # the operator's configured Slack was never called by replay
    assert [a.kind for a in stored_alerts(engine)] == ["refund"]

"""/paid end to end: signed slash commands and clicks through POST /slack/events, the real
Bolt app, `lookup_customers` on SQLite and PostgreSQL, and the loopback Slack API (which
also receives what is posted to the response URL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func
from sqlmodel import select

from handlers.revenue.ledger import record_customer_mrr
from handlers.slack import command_copy as words
from handlers.slack.command_ids import CommandAction, CustomerRef
from handlers.slack.commands import split_public
from handlers.slack.ids import TaskModalBlock
from handlers.slack.refs import TaskModalRef
from storage.db import read_scope, session_scope
from storage.models import Customer, SubscriptionItem, Task
from storage.tasks import create_task
from tests import store_rows
from tests.slack.command_requests import CHANNEL, click, slash, start_web, texts
from tests.slack.conftest import make_settings
from tests.slack.signing import form_body, slack_headers, view_submission

ME, OTHER = "U0ME", "U0OTHER"
NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # the `clock` fixture
DAY = timedelta(days=1)


@pytest.fixture
def web(engine, settings, slack_api, clock):
    with start_web(engine, settings, slack_api, clock) as http:
        yield http


@pytest.fixture
def acme(engine):
    """Acme: $49 x 2 seats monthly, a trial, a plan cancelling at period end, an invoice
    failing for the second time, a $49 payment of which $10 was refunded, an open task."""
    at = NOW - 2 * DAY
    with session_scope(engine) as session:
        store_rows.customer(
            session, id="cus_acme", email="Billing@Acme.test", name="Acme Inc", at=at
        )
        store_rows.subscription(
            session, id="sub_pro", customer_id="cus_acme", at=at,
            items=[{"plan_name": "Pro", "unit_amount": 4900, "quantity": 2}],
            current_period_end=NOW + 10 * DAY,
        )  # fmt: skip
        store_rows.subscription(
            session, id="sub_team", customer_id="cus_acme", status="trialing", at=at,
            items=[{"plan_name": "Team", "unit_amount": 19900, "interval": "year"}],
            trial_end=NOW + 5 * DAY,
        )  # fmt: skip
        store_rows.subscription(
            session, id="sub_addon", customer_id="cus_acme", at=at, cancel_at_period_end=True,
            items=[{"plan_name": "Add-on", "unit_amount": 900}], current_period_end=NOW + 3 * DAY,
        )  # fmt: skip
        store_rows.invoice(
            session, id="in_failing", customer_id="cus_acme", amount=9800, at=at, number="ACME-0042",
            attempt_count=2, next_payment_attempt=NOW + 2 * DAY, hosted_invoice_url="https://invoice.stripe.test/i/1",
        )  # fmt: skip
        paid = store_rows.charge(session, id="ch_paid", customer_id="cus_acme", amount=4900, at=at)
        store_rows.refund(session, charge_id=paid.id, amount=1000, at=at)
        create_task(
            session=session, customer_id="cus_acme", alert_id=None, title="Call <@U0BOSS> about the card",
            note=None, assignee=OTHER, creator=ME, due_date=(NOW + DAY).date(), now=at,
        )  # fmt: skip


def answers(slack_api) -> list[dict]:
    return slack_api.responses()


def test_split_public():
    assert split_public("jane@example.com public") == ("jane@example.com", True)
    assert split_public("Acme Inc  PUBLIC ") == ("Acme Inc", True)
    assert split_public("public") == ("public", False)
    assert split_public("public media") == ("public media", False)


def test_one_customer_in_detail(web, slack_api, acme):
    response = slash(
        web, slack_api, "/paid", "<mailto:billing@acme.test|billing@acme.test>", user=ME
    )

    assert response.status_code == 200 and response.text == ""  # acknowledged at once
    [answer] = answers(slack_api)
    assert answer["response_type"] == "ephemeral"
    shown = texts(answer)
    assert answer["blocks"][0]["text"]["text"] == "Acme Inc"
    assert ":red_circle: Overdue" in shown and "`cus_acme`" in shown and "test mode" in shown
    assert "*MRR*\n$98.00/mo" in shown
    assert "*Lifetime value*\n$39.00" in shown
    assert "*Last successful payment*\n$49.00 · <!date^" in shown
    assert "• *Pro* · monthly · 2 seats · $98.00/mo · renews <!date^" in shown
    assert "• *Team* · trialing · yearly · trial ends <!date^" in shown
    assert "• *Add-on* · monthly · :hourglass_flowing_sand: cancels <!date^" in shown
    assert "*Open invoices* · $98.00 owed" in shown
    assert (
        "<https://invoice.stripe.test/i/1|ACME-0042> · $98.00 · :warning: overdue · 2 attempts · next try <!date^"
        in shown
    )
    assert f"<@{OTHER}> · <!date^" in shown
    assert "_Call &lt;@U0BOSS&gt; about the card_" in shown  # data, never a mention
    assert "As of <!date^" in shown
    [create, stripe] = answer["blocks"][-1]["elements"]
    assert create["action_id"] == CommandAction.PAID_CREATE_TASK
    assert CustomerRef.decode(create["value"]).customer == "cus_acme"
    assert stripe["url"] == "https://dashboard.stripe.com/test/customers/cus_acme"


def test_mrr_history_since_and_was(engine, web, slack_api):
    with session_scope(engine) as session:
        store_rows.customer(session, id="cus_grow", email="grow@example.test", name="Grow Ltd")
        store_rows.subscription(
            session, id="sub_grow", customer_id="cus_grow", items=[{"id": "si_grow", "unit_amount": 4900}]
        )  # fmt: skip
        session.flush()
        record_customer_mrr(
            session, customer_id="cus_grow", at=datetime(2026, 2, 1, tzinfo=UTC), event_id="evt_1"
        )
        session.get(SubscriptionItem, "si_grow").quantity = 2
        session.flush()
        record_customer_mrr(session, customer_id="cus_grow", at=datetime(2026, 3, 3, 9, tzinfo=UTC), event_id="evt_2")  # fmt: skip

    slash(web, slack_api, "/paid", "cus_grow", user=ME)

    assert "*MRR*\n$98.00/mo\nsince <!date^" in texts(answers(slack_api)[0])
    assert "|2026-03-03>, was $49.00" in texts(answers(slack_api)[0])


def test_several_customers_for_one_email_are_listed_and_one_can_be_shown(engine, web, slack_api):
    with session_scope(engine) as session:
        for n, name in ((1, "Jane at Acme"), (2, "Jane at Globex")):
            store_rows.customer(session, id=f"cus_jane{n}", email="jane@example.com", name=name)
        store_rows.subscription(session, customer_id="cus_jane1")

    slash(web, slack_api, "/paid", "JANE@example.com", user=ME)
    [listing] = answers(slack_api)
    shown = texts(listing)
    assert "*2 customers match* `JANE@example.com`" in shown
    rows = [b for b in listing["blocks"] if "accessory" in b]
    assert [CustomerRef.decode(b["accessory"]["value"]).customer for b in rows] == [
        "cus_jane1",
        "cus_jane2",
    ]
    assert ":large_green_circle: Current" in rows[0]["text"]["text"]
    assert ":white_circle: No subscription" in rows[1]["text"]["text"]

    click(
        web,
        slack_api,
        action_id=CommandAction.PAID_SHOW,
        user=ME,
        value=rows[1]["accessory"]["value"],
    )
    shown_one = answers(slack_api)[1]
    assert shown_one["replace_original"] is True
    assert shown_one["blocks"][0]["text"]["text"] == "Jane at Globex"


def test_a_show_button_for_a_customer_that_is_gone_or_forged_changes_nothing(web, slack_api):
    click(
        web,
        slack_api,
        action_id=CommandAction.PAID_SHOW,
        user=ME,
        value=CustomerRef(customer="cus_gone").encode(),
    )
    click(
        web,
        slack_api,
        action_id=CommandAction.PAID_SHOW,
        user=ME,
        value='{"customer": "cus_x\' OR 1=1"}',
    )
    assert [a["text"] for a in answers(slack_api)] == [words.PAID_CUSTOMER_GONE, words.STALE]


def test_no_match_says_so_and_suggests_close_matches(web, slack_api, acme):
    slash(web, slack_api, "/paid", "billing@acme.tset", user=ME)
    slash(web, slack_api, "/paid", "cus_nobody", user=ME)
    typo, unknown_id = answers(slack_api)
    assert texts(typo).startswith("No customer matches billing@acme.tset.")
    assert "Did you mean `billing@acme.test`?" in texts(typo)
    assert words.PAID_NO_SUGGESTION in texts(unknown_id)


@pytest.mark.parametrize(
    "text, reason",
    [
        ("", None),
        ("   ", None),
        ("<@U0OTHER|other>", "mention"),
        ("!!! ??? ...", "no letters or digits"),
        ("x" * 600, "longer than"),
        ("%", "no letters or digits"),
    ],
)
def test_empty_or_garbled_input_gets_the_usage(web, slack_api, text, reason):
    slash(web, slack_api, "/paid", text, user=ME)
    [answer] = answers(slack_api)
    assert answer["response_type"] == "ephemeral" and words.PAID_USAGE in answer["text"]
    assert reason is None or reason in answer["text"]


@pytest.mark.parametrize(
    "text",
    [
        "'; DROP TABLE customer; --",
        'Robert"); DELETE FROM subscription WHERE ("1"="1',
        "acme' OR '1'='1",
        "<!channel> *bold* _x_ <https://evil.test|click>",
        "a_c%e",
        "🙂 Acme",
    ],
)
def test_hostile_input_is_data(engine, web, slack_api, acme, text):
    slash(web, slack_api, "/paid", text, user=ME)
    [answer] = answers(slack_api)
    shown = texts(answer)
    assert answer["response_type"] == "ephemeral"
    assert "<!channel>" not in shown and "<https://evil.test" not in shown
    with read_scope(engine) as session:
        assert session.exec(select(func.count()).select_from(Customer)).one() == 1


@pytest.mark.parametrize("text", ['"Acme Inc"', "ＡＣＭＥ", "  acme   inc ", "cus_acme"])
def test_quotes_unicode_and_spacing_still_find_the_customer(web, slack_api, acme, text):
    slash(web, slack_api, "/paid", text, user=ME)
    assert answers(slack_api)[0]["blocks"][0]["text"]["text"] == "Acme Inc"


def test_unicode_names_are_found_and_shown_as_they_are(engine, web, slack_api):
    with session_scope(engine) as session:
        store_rows.customer(session, id="cus_zoe", email="zoe@example.test", name="Zoë Müller 王伟")
    slash(web, slack_api, "/paid", "müller", user=ME)
    assert answers(slack_api)[0]["blocks"][0]["text"]["text"] == "Zoë Müller 王伟"


def test_public_posts_in_the_channel_and_names_who_asked(web, slack_api, acme):
    slash(web, slack_api, "/paid", "cus_acme public", user=ME)
    slash(web, slack_api, "/paid", "nobody@example.test public", user=ME)
    found, missing = answers(slack_api)
    assert found["response_type"] == "in_channel"
    assert f"Asked by <@{ME}> with `/paid`" in texts(found)
    assert missing["response_type"] == "ephemeral"  # only an answer about a customer is shared


def test_public_is_refused_outside_the_allowed_channels(engine, slack_api, clock, acme):
    settings = make_settings(slack_api, slack_allowed_users=ME, slack_allowed_channels="C0FINANCE")
    with start_web(engine, settings, slack_api, clock) as web:
        slash(web, slack_api, "/paid", "cus_acme public", user=ME, channel="D0ME")
        slash(web, slack_api, "/paid", "cus_acme", user=ME, channel="D0ME")
        slash(web, slack_api, "/paid", "cus_acme public", user=ME, channel="C0FINANCE")
    refused, private, public = answers(slack_api)
    assert refused == {
        "text": words.PUBLIC_NOT_HERE.format(channels="<#C0FINANCE>"),
        "response_type": "ephemeral",
        "replace_original": False,
    }
    assert private["response_type"] == "ephemeral" and "Acme Inc" in texts(private)
    assert public["response_type"] == "in_channel"


def test_create_follow_up_task_opens_the_alerts_modal_and_stores_the_task(
    engine, web, slack_api, acme
):
    value = CustomerRef(customer="cus_acme").encode()
    click(web, slack_api, action_id=CommandAction.PAID_CREATE_TASK, user=ME, value=value)
    [opened] = slack_api.calls_to("views.open")
    view = opened.json_param("view")
    assert TaskModalRef.decode(view["private_metadata"]) == TaskModalRef(customer="cus_acme")
    assert "Acme Inc" in texts(view) and "Overdue" in texts(view)

    values = {
        TaskModalBlock.TITLE.value: {TaskModalBlock.TITLE.action_id: {"type": "plain_text_input", "value": "Call Acme"}},
        TaskModalBlock.ASSIGNEE.value: {TaskModalBlock.ASSIGNEE.action_id: {"type": "users_select", "selected_user": ME}},
        TaskModalBlock.DUE.value: {TaskModalBlock.DUE.action_id: {"type": "datepicker", "selected_date": "2026-12-02"}},
        TaskModalBlock.NOTE.value: {TaskModalBlock.NOTE.action_id: {"type": "plain_text_input", "value": None}},
    }  # fmt: skip
    body = form_body(view_submission(view=view, user=ME, values=values))
    assert web.post("/slack/events", content=body, headers=slack_headers(body)).status_code == 200

    with read_scope(engine) as session:
        created = session.exec(select(Task).where(Task.title == "Call Acme")).one()
        assert (created.customer_id, created.alert_id, created.assignee) == ("cus_acme", None, ME)


def test_a_customer_gone_before_the_task_button_is_pressed(web, slack_api):
    value = CustomerRef(customer="cus_gone").encode()
    click(
        web,
        slack_api,
        action_id=CommandAction.PAID_CREATE_TASK,
        user=ME,
        value=value,
        channel=CHANNEL,
    )
    assert slack_api.calls_to("views.open") == []
    assert answers(slack_api)[0]["text"] == words.PAID_CUSTOMER_GONE

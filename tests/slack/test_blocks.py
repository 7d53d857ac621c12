"""The Block Kit builders, tested with plain asserts on their output."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime

import pytest

from handlers.slack import blocks, copy, mrkdwn
from handlers.slack.cards import AlertCard, AlertFacts, TaskInfo
from handlers.slack.ids import ActionId, CallbackId, TaskModalBlock
from handlers.slack.refs import AlertRef, TaskModalRef

RETRY = datetime(2026, 11, 30, 9, 30, tzinfo=UTC)
DATE_TOKEN = re.compile(r"<!date\^(\d+)\^\{date_short_pretty\}( at \{time\})?\|[^>]+>")

FACTS = {
    "payment_failed": AlertFacts(
        customer_id="cus_1",
        customer_name="Acme Inc",
        customer_email="billing@acme.test",
        currency="usd",
        amount=4900,
        invoice_id="in_1",
        invoice_number="ACME-0042",
        hosted_invoice_url="https://invoice.stripe.com/i/in_1",
        attempt=2,
        decline_reason="Your card was declined. (card_declined)",
        next_retry_at=RETRY,
        plan="Pro (monthly)",
        mrr_currency="usd",
        mrr=4900,
        livemode=True,
    ),
    "canceled": AlertFacts(
        customer_id="cus_1",
        customer_name="Acme Inc",
        plan="Pro (monthly)",
        mrr_currency="eur",
        mrr=9900,
        ended_at=RETRY,
        cancellation_feedback="too_expensive",
        cancellation_comment="We <3 you but money",
    ),
    "upgrade": AlertFacts(
        customer_id="cus_1",
        customer_name="Acme Inc",
        plan="Scale (monthly)",
        old_plan="Pro (monthly)",
        mrr_currency="usd",
        mrr=19900,
        old_mrr=4900,
    ),
    "trial_ending": AlertFacts(
        customer_id="cus_1",
        customer_email="ops@acme.test",
        plan="Pro (monthly)",
        mrr_currency="jpy",
        mrr=5000,
        trial_end=RETRY,
        has_payment_method=False,
    ),
    "refund": AlertFacts(
        customer_id="cus_1",
        customer_name="Acme Inc",
        currency="usd",
        amount=1500,
        charge_amount=4900,
        amount_refunded=1500,
        refund_reason="requested_by_customer",
    ),
}
ALL_KINDS = list(copy.TITLES)


def card(kind: str, facts: AlertFacts | None = None, **extra) -> AlertCard:
    base = FACTS.get(kind) or FACTS["payment_failed" if kind in copy.PAYMENT_KINDS else "canceled"]
    return AlertCard(
        alert_id=7, kind=kind, state=extra.pop("state", "open"), facts=facts or base, **extra
    )


def texts(message: dict) -> str:
    """Every piece of text in a message, for `in` checks."""
    return json.dumps(message, ensure_ascii=False)


def check_limits(message: dict) -> None:
    assert message["text"], "a plain-text fallback is required for notifications"
    assert len(message["blocks"]) <= blocks.MAX_BLOCKS
    for block in message["blocks"]:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= blocks.MAX_HEADER
        if block["type"] == "section":
            assert len(block.get("text", {}).get("text", "")) <= blocks.MAX_SECTION
            assert len(block.get("fields", [])) <= blocks.MAX_FIELDS
            assert all(len(f["text"]) <= blocks.MAX_FIELD for f in block.get("fields", []))
        for element in block.get("elements", []) + [block.get("accessory") or {}]:
            if element.get("type") == "button":
                assert len(element["text"]["text"]) <= blocks.MAX_BUTTON
                assert len(element.get("value", "")) <= 2000


@pytest.mark.parametrize("kind", ALL_KINDS)
def test_every_kind_renders_within_limits_with_its_title(kind):
    message = blocks.alert_message(card(kind))
    check_limits(message)
    assert message["blocks"][0]["type"] == "header"
    assert copy.TITLES[kind] in message["blocks"][0]["text"]["text"]
    assert message["text"].startswith(copy.TITLES[kind])


def test_payment_failed_shows_everything_an_account_manager_needs():
    message = blocks.alert_message(card("payment_failed"))
    shown = texts(message)
    for expected in [
        "Acme Inc",
        "billing@acme.test",
        "$49.00",
        "ACME-0042",
        "card_declined",
        "Pro (monthly)",
        "$49.00/mo",
        copy.F_MRR_AT_RISK,
        "https://invoice.stripe.com/i/in_1",
    ]:
        assert expected in shown, expected
    attempt = next(
        f["text"]
        for f in message["blocks"][1]["fields"]
        if f["text"].startswith(f"*{copy.F_ATTEMPT}*")
    )
    assert attempt.endswith("2")
    retry = DATE_TOKEN.search(shown)
    assert retry and int(retry.group(1)) == int(RETRY.timestamp()) and retry.group(2)
    assert "2026-11-30 09:30 UTC" in shown  # the fallback where the token cannot render


def test_payment_failed_without_retries_says_so():
    facts = FACTS["payment_failed"].model_copy(update={"next_retry_at": None})
    assert copy.NO_MORE_RETRIES in texts(blocks.alert_message(card("payment_failed", facts)))


def test_open_alert_buttons_carry_only_the_alert_id():
    actions = blocks.alert_message(card("payment_failed"))["blocks"][-1]
    ids = [e["action_id"] for e in actions["elements"]]
    assert ids == [
        ActionId.CREATE_TASK,
        ActionId.ASSIGN_TO_ME,
        ActionId.MARK_HANDLED,
        ActionId.OPEN_IN_STRIPE,
        ActionId.OPEN_INVOICE,
    ]
    for element in actions["elements"]:
        if "value" in element:
            assert AlertRef.decode(element["value"]) == AlertRef(alert=7)
            assert json.loads(element["value"]) == {"alert": 7}
    stripe = next(e for e in actions["elements"] if e["action_id"] == ActionId.OPEN_IN_STRIPE)
    assert stripe["url"] == "https://dashboard.stripe.com/customers/cus_1"


def test_test_mode_links_to_the_test_dashboard_and_says_test_mode():
    message = blocks.alert_message(card("canceled"))
    assert "https://dashboard.stripe.com/test/customers/cus_1" in texts(message)
    assert copy.CTX_TEST_MODE in texts(message)


def test_handled_and_recovered_alerts_keep_only_links():
    handled = blocks.alert_message(
        card("payment_failed", state="handled", handled_by="U42", handled_at=RETRY)
    )
    assert "Handled by <@U42>" in texts(handled)
    assert [e.get("url") is not None for e in handled["blocks"][-1]["elements"]] == [True, True]
    recovered = blocks.alert_message(card("payment_failed", state="recovered", recovered_at=RETRY))
    assert recovered["blocks"][0]["text"]["text"].startswith(
        ":white_check_mark: " + copy.RECOVERED_TITLE
    )
    assert copy.F_PAID in texts(recovered) and copy.F_DECLINE not in texts(recovered)


def test_task_on_an_alert_names_assignee_and_due_day():
    task = TaskInfo(
        id=3, title="Call Acme", assignee="U9", due_date=date(2026, 12, 1), status="open"
    )
    line = blocks.alert_context(card("payment_failed", task=task))[0]
    assert "<@U9>" in line and "2026-12-01" in line and "Call Acme" in line
    noon = int(datetime(2026, 12, 1, 12, tzinfo=UTC).timestamp())
    assert f"<!date^{noon}^" in line


def test_upgrade_shows_old_and_new_plan_and_signed_change():
    shown = texts(blocks.alert_message(card("upgrade")))
    assert "Pro (monthly) → Scale (monthly)" in shown
    assert "$49.00/mo → $199.00/mo" in shown
    assert "+$150.00/mo" in shown


def test_cancellation_shows_mrr_lost_reason_and_escaped_comment():
    shown = texts(blocks.alert_message(card("canceled")))
    assert "MRR lost" in shown and "€99.00/mo" in shown and "Too expensive" in shown
    assert "We &lt;3 you but money" in shown


def test_trial_ending_in_zero_decimal_currency():
    shown = texts(blocks.alert_message(card("trial_ending")))
    assert "¥5,000/mo" in shown and "ops@acme.test" in shown and copy.PAYMENT_METHOD[False] in shown


def test_refund_amount_and_reason():
    shown = texts(blocks.alert_message(card("refund")))
    assert "$15.00" in shown and "Requested by customer" in shown and "$49.00" in shown


def test_long_and_hostile_customer_names_are_clipped_and_escaped():
    facts = FACTS["payment_failed"].model_copy(
        update={"customer_name": "<!channel> & " + "x" * 5000, "decline_reason": "d" * 6000}
    )
    message = blocks.alert_message(card("payment_failed", facts))
    check_limits(message)
    assert "<!channel>" not in json.dumps(message["blocks"][1])
    assert "&lt;!channel&gt; &amp;" in json.dumps(message["blocks"][1])


def test_development_replies():
    second = blocks.development_reply(card("payment_failed"), previous_kind="payment_failed")
    assert (
        "Attempt 2" in second["text"]
        and "card_declined" in second["text"]
        and DATE_TOKEN.search(second["text"])
    )
    recovered = blocks.development_reply(
        card("payment_failed", state="recovered", recovered_at=RETRY),
        previous_kind="payment_failed",
    )
    assert (
        recovered["text"].startswith(":white_check_mark: Recovered")
        and "$49.00" in recovered["text"]
    )


def test_task_modal():
    ref = TaskModalRef(alert=7)
    view = blocks.task_modal(
        ref=ref,
        about="Payment failed: Acme",
        title="Follow up",
        assignee="U1",
        due=date(2026, 12, 1),
    )
    assert view["type"] == "modal" and view["callback_id"] == CallbackId.TASK_MODAL
    assert TaskModalRef.decode(view["private_metadata"]) == ref
    assert all(len(view[k]["text"]) <= 24 for k in ("title", "submit", "close"))
    inputs = {b["block_id"]: b["element"] for b in view["blocks"] if b["type"] == "input"}
    assert inputs[TaskModalBlock.TITLE]["initial_value"] == "Follow up"
    assert inputs[TaskModalBlock.ASSIGNEE] == {
        "type": "users_select",
        "initial_user": "U1",
        "action_id": TaskModalBlock.ASSIGNEE.action_id,
    }
    assert inputs[TaskModalBlock.DUE]["initial_date"] == "2026-12-01"
    assert inputs[TaskModalBlock.NOTE]["multiline"] is True


def test_storm_summary_lists_each_alert_within_limits():
    cards = [
        AlertCard(
            alert_id=n,
            kind="payment_failed",
            state="open",
            facts=FACTS["payment_failed"].model_copy(update={"customer_name": f"Customer {n}"}),
        )
        for n in range(1, 61)
    ]
    message = blocks.storm_summary("payment_failed", cards)
    check_limits(message)
    assert len(message["blocks"]) == 2 + blocks.STORM_MAX_ENTRIES
    assert "*Customer 1*" in texts(message) and "*Customer 40*" in texts(message)
    assert "Customer 41" not in texts(message)
    assert message["blocks"][2]["accessory"]["value"] == AlertRef(alert=1).encode()


def test_plain_rendering_for_console_mode():
    text = mrkdwn.plain_rendering(
        blocks.alert_message(card("payment_failed")), channel="#billing", operation="post"
    )
    assert text.splitlines()[0] == "── post → #billing ──"
    assert (
        "Acme Inc" in text
        and "Decline reason: Your card was declined." in text
        and "[Mark handled]" in text
    )


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "nope",
        "{}",
        '{"alert": "7"}',
        '{"alert": -1}',
        '{"alert": 7, "x": 1}',
        "[7]",
        '{"alert": 7.5}',
        "x" * 3000,
        None,
    ],
)
def test_forged_button_values_are_refused(raw):
    with pytest.raises(ValueError):
        AlertRef.decode(raw)

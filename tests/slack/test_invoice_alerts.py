"""Payment alerts about invoices outside a subscription (one-off invoices), from the store
through the rules to the Block Kit message."""

from __future__ import annotations

import pytest

from handlers.slack import blocks, copy
from handlers.slack.cards import AlertCard, AlertFacts
from storage.db import session_scope
from tests.slack.conftest import make_settings
from tests.slack.factories import (
    add_customer,
    add_invoice,
    add_subscription,
    alerts,
    event,
    outbox_rows,
    react,
)

INVOICE = {"id": "in_acme", "object": "invoice", "customer": "cus_acme"}


@pytest.fixture
def settings():
    return make_settings()  # console mode: no token, #billing-alerts


def fields(message: dict) -> dict[str, str]:
    """The alert's section fields by label: `{"MRR at risk": "$49.00/mo", ...}`."""
    labelled = (f["text"].partition("\n") for f in message["blocks"][1]["fields"])
    return {label.strip("*"): value for label, _, value in labelled}


def posted_fields(engine) -> dict[str, str]:
    [post] = outbox_rows(engine)
    return fields(post.payload)


def failed_invoice_alert(engine, settings, **invoice) -> AlertFacts:
    with session_scope(engine) as session:
        add_customer(session)
        add_subscription(session)
        add_invoice(session, **invoice)
    react(engine, settings, event("invoice.payment_failed", INVOICE))
    [alert] = alerts(engine)
    return AlertFacts.model_validate(alert.facts)


def test_one_off_invoice_says_it_adds_no_mrr(engine, settings):
    facts = failed_invoice_alert(engine, settings, subscription_id=None)
    assert facts.one_off_invoice and facts.mrr is None
    shown = posted_fields(engine)
    assert shown[copy.F_PLAN] == copy.ONE_OFF_PLAN
    assert shown[copy.F_MRR_AT_RISK] == copy.ONE_OFF_MRR


def test_subscription_invoice_shows_its_mrr_at_risk(engine, settings):
    facts = failed_invoice_alert(engine, settings)  # sub_acme, stored: Pro at $49.00 a month
    assert not facts.one_off_invoice
    shown = posted_fields(engine)
    assert (shown[copy.F_PLAN], shown[copy.F_MRR_AT_RISK]) == ("Pro (monthly)", "$49.00/mo")


def test_invoice_of_a_subscription_not_stored_yet_is_not_called_one_off(engine, settings):
    facts = failed_invoice_alert(engine, settings, subscription_id="sub_not_seen_yet")
    assert not facts.one_off_invoice
    shown = posted_fields(engine)
    assert shown[copy.F_MRR_AT_RISK] == copy.UNKNOWN  # billbot does not know it yet
    assert shown[copy.F_PLAN] == copy.NO_PLAN


@pytest.mark.parametrize("state, label", [("open", copy.F_MRR_AT_RISK), ("recovered", copy.F_MRR)])
def test_one_off_card_in_every_state(state, label):
    facts = AlertFacts(
        customer_id="cus_1",
        customer_name="Acme Inc",
        currency="usd",
        amount=120000,
        invoice_id="in_1",
        attempt=1,
        one_off_invoice=True,
    )
    card = AlertCard(alert_id=1, kind="payment_failed", state=state, facts=facts)
    shown = fields(blocks.alert_message(card))
    assert shown[label] == copy.ONE_OFF_MRR and shown[copy.F_PLAN] == copy.ONE_OFF_PLAN
    assert copy.UNKNOWN not in shown[label]

"""Payment alerts about invoices outside a subscription (one-off invoices), and about
customers billbot has no row for, from the store through the rules to the Block Kit message."""

from __future__ import annotations

import json

import pytest

from handlers.alerts import enqueue_alerts
from handlers.slack import blocks, copy
from handlers.slack.cards import AlertCard, AlertFacts
from handlers.stripe.events import parse_event
from handlers.stripe.registry import AppliedEvent, handler_for
from storage.db import session_scope
from tests import factories as f
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


def live_failed_payment(engine, settings, obj: dict, api_version: str) -> None:
    """Apply a webhook's `invoice.payment_failed` with the real handler, then the alert
    reaction, in one transaction as the worker does."""
    raw = f.event("invoice.payment_failed", obj, created=f.T0, api_version=api_version)
    stripe_event = parse_event(json.dumps(raw).encode())
    with session_scope(engine) as session:
        changes = handler_for(stripe_event.type)(session, stripe_event)
        applied = AppliedEvent(event=stripe_event, changes=changes, source="webhook")
        enqueue_alerts(session, applied, settings, now=stripe_event.created)


def unseen_customer_invoice(api_version: str, **contact) -> dict:
    obj = f.invoice(api_version=api_version, customer="cus_unseen", status="open", attempt_count=1)
    obj.update(contact)
    return obj


@pytest.mark.parametrize("api_version", f.API_VERSIONS)
def test_unseen_customer_is_named_as_the_invoice_names_them(engine, settings, api_version):
    obj = unseen_customer_invoice(
        api_version, customer_name="Acme Inc", customer_email="billing@acme.test"
    )
    live_failed_payment(engine, settings, obj, api_version)
    [alert] = alerts(engine)
    facts = AlertFacts.model_validate(alert.facts)
    assert (facts.customer_id, facts.customer_name, facts.customer_email) == (
        "cus_unseen",
        "Acme Inc",
        "billing@acme.test",
    )
    [post] = outbox_rows(engine)
    assert post.payload["text"].startswith("Payment failed: Acme Inc")
    assert fields(post.payload)[copy.F_CUSTOMER] == "Acme Inc\nbilling@acme.test"
    assert copy.BTN_CREATE_TASK in json.dumps(post.payload)  # still about a customer id


def test_unseen_customer_with_only_an_email(engine, settings):
    obj = unseen_customer_invoice(f.NEW, customer_email="ops@acme.test")
    live_failed_payment(engine, settings, obj, f.NEW)
    [post] = outbox_rows(engine)
    assert post.payload["text"].startswith("Payment failed: ops@acme.test")
    assert fields(post.payload)[copy.F_CUSTOMER] == "ops@acme.test"


def test_invoice_without_contact_still_shows_the_customer_id(engine, settings):
    live_failed_payment(engine, settings, unseen_customer_invoice(f.NEW), f.NEW)
    [post] = outbox_rows(engine)
    assert fields(post.payload)[copy.F_CUSTOMER] == "cus_unseen"


def test_a_stored_customer_wins_over_the_invoice_copy(engine, settings):
    with session_scope(engine) as session:
        add_customer(session, id="cus_unseen", name="Acme Incorporated", email="new@acme.test")
    obj = unseen_customer_invoice(f.NEW, customer_name="Acme Inc", customer_email="old@acme.test")
    live_failed_payment(engine, settings, obj, f.NEW)
    [post] = outbox_rows(engine)
    assert fields(post.payload)[copy.F_CUSTOMER] == "Acme Incorporated\nnew@acme.test"

from __future__ import annotations

from handlers.stripe.charges import CHARGE_EVENTS, REFUND_EVENTS
from handlers.stripe.customers import CUSTOMER_EVENTS
from handlers.stripe.invoices import INVOICE_EVENTS, INVOICE_PAYMENT_EVENTS
from handlers.stripe.registry import handled_types, handler_for
from handlers.stripe.subscriptions import SUBSCRIPTION_EVENTS

# What the README promises (issue 2 and the worker's contract).
PROMISED = {
    "customer.created", "customer.updated", "customer.deleted",
    "customer.subscription.created", "customer.subscription.updated", "customer.subscription.deleted",
    "customer.subscription.paused", "customer.subscription.resumed", "customer.subscription.trial_will_end",
    "customer.subscription.pending_update_applied", "customer.subscription.pending_update_expired",
    "invoice.created", "invoice.finalized", "invoice.updated", "invoice.paid", "invoice.payment_succeeded",
    "invoice.payment_failed", "invoice.payment_action_required", "invoice.marked_uncollectible",
    "invoice.voided", "invoice.deleted", "invoice.overdue", "invoice.sent", "invoice.finalization_failed",
    "invoice.will_be_due", "invoice_payment.paid",
    "charge.succeeded", "charge.failed", "charge.pending", "charge.captured", "charge.updated", "charge.refunded",
    "charge.refund.updated", "refund.created", "refund.updated", "refund.failed",
}  # fmt: skip


def test_every_promised_type_has_a_handler():
    assert handled_types() >= PROMISED
    assert all(handler_for(t) is not None for t in PROMISED)


def test_handled_types_are_exactly_the_families_lists():
    families = (
        CUSTOMER_EVENTS,
        SUBSCRIPTION_EVENTS,
        INVOICE_EVENTS,
        INVOICE_PAYMENT_EVENTS,
        CHARGE_EVENTS,
        REFUND_EVENTS,
    )
    assert handled_types() == frozenset().union(*families)


def test_upcoming_invoices_and_unknown_types_have_none():
    assert handler_for("invoice.upcoming") is None
    assert handler_for("charge.dispute.created") is None
    assert handler_for("something.new") is None


def test_every_handled_type_exists_in_stripes_list(reference_dir):
    lines = (reference_dir / "stripe" / "event_types.txt").read_text().splitlines()
    known = {line.split("\t")[0] for line in lines if line and not line.startswith("#")}
    assert handled_types() <= known


def test_readme_lists_exactly_the_handled_types():
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("<!-- handled-event-types:start -->")[1].split(
        "<!-- handled-event-types:end -->"
    )[0]
    assert set(re.findall(r"`([a-z_.]+)`", section)) == handled_types()

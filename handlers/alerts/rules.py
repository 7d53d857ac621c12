"""Which applied Stripe event means which alert, decided from the store and the event's type
and `previous_attributes`.

A rule returns `Development`s: "this incident now looks like this". `incidents.py` turns
each into a new alert, an update of the incident's existing alert, or nothing (a replay,
or an event older than what the store holds). Incident keys:

- `payment_failed:{invoice_id}`: failed attempts, action required, uncollectible, recovery
- `cancellation:{subscription_id}:...`: scheduled, undone, ended (one alert tells the story)
- `plan_change:{subscription_id}:{event_id}`, `trial_converted:{subscription_id}`,
  `trial_ending:{subscription_id}:{trial_end}`, `refund:{charge_id}:{amount_refunded}`
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from sqlmodel import Session, SQLModel

from handlers.alerts import previous
from handlers.alerts.facts import (
    invoice_facts,
    items_mrr,
    plan_label,
    refund_facts,
    stored_row,
    subscription_facts,
    subscription_items,
)
from handlers.slack.cards import AlertFacts
from handlers.stripe.registry import AppliedEvent
from storage import alerts as stored_alerts
from storage.models.alerts import Alert, AlertKind, AlertState
from storage.models.billing import Charge, Invoice, Subscription
from storage.mrr import MRR_STATUSES

CANCEL_KINDS = (AlertKind.CANCEL_SCHEDULED, AlertKind.CANCEL_UNDONE, AlertKind.CANCELED)
INVOICE_KINDS = {
    "invoice.payment_failed": AlertKind.PAYMENT_FAILED,
    "invoice.payment_action_required": AlertKind.ACTION_REQUIRED,
    "invoice.marked_uncollectible": AlertKind.UNCOLLECTIBLE,
}


@dataclass(frozen=True, slots=True)
class Development:
    kind: AlertKind
    incident_key: str  # the key a new alert gets
    subject_id: str
    customer_id: str | None
    facts: AlertFacts
    amount: int | None  # compared with the route's minimum
    existing: Alert | None = None  # the incident's alert, when it has one
    state: AlertState | None = None  # a new state for the existing alert
    may_open: bool = True  # False: only ever develops an existing alert


Rule = Callable[[Session, AppliedEvent], list[Development]]
RULES: dict[str, Rule] = {}
ModelT = TypeVar("ModelT", bound=SQLModel)


def rule(*event_types: str) -> Callable[[Rule], Rule]:
    def register(fn: Rule) -> Rule:
        for event_type in event_types:
            RULES[event_type] = fn
        return fn

    return register


def get_alert_by_incident(*, session: Session, incident_key: str, subject_id: str) -> Alert | None:
    """An incident's alert (`subject_id`: what the incident is about). Answered from what the
    worker's unit of work knows about its subjects' alerts (`storage/alerts.py`), without
    flushing the batch's pending rows; a query only for subjects it does not hold."""
    return stored_alerts.incident_alert(
        session=session, incident_key=incident_key, subject_id=subject_id
    )


def latest_alert_for_subject(
    *, session: Session, subject_id: str, kinds: tuple[AlertKind, ...]
) -> Alert | None:
    return stored_alerts.latest_subject_alert(session=session, subject_id=subject_id, kinds=kinds)


def developments(session: Session, applied: AppliedEvent) -> list[Development]:
    fn = RULES.get(applied.event.type)
    return fn(session, applied) if fn else []


def _stored(
    session: Session, model: type[ModelT], applied: AppliedEvent, object_type: str
) -> ModelT | None:
    ids = [c.object_id for c in applied.changes if c.object_type == object_type]
    object_id = ids[0] if ids else applied.event.object_id
    return stored_row(session, model, object_id) if object_id else None


def _was_applied(applied: AppliedEvent, object_id: str) -> bool:
    """False when the event was older than the stored object: its `previous_attributes`
    describe a transition the store has already moved past."""
    return all(change.applied for change in applied.changes if change.object_id == object_id)


@rule(*INVOICE_KINDS)
def invoice_problem(session: Session, applied: AppliedEvent) -> list[Development]:
    invoice = _stored(session, Invoice, applied, "invoice")
    if invoice is None or invoice.status in ("paid", "void", "deleted"):
        return []
    kind = (
        AlertKind.UNCOLLECTIBLE
        if invoice.status == "uncollectible"
        else INVOICE_KINDS[applied.event.type]
    )
    key = f"payment_failed:{invoice.id}"
    facts = invoice_facts(session, invoice)
    return [
        Development(
            kind=kind,
            incident_key=key,
            subject_id=invoice.id,
            customer_id=invoice.customer_id,
            facts=facts,
            amount=facts.amount,
            existing=get_alert_by_incident(
                session=session, incident_key=key, subject_id=invoice.id
            ),
        )
    ]


@rule("invoice.paid")
def invoice_recovered(session: Session, applied: AppliedEvent) -> list[Development]:
    invoice = _stored(session, Invoice, applied, "invoice")
    if invoice is None or invoice.status != "paid":
        return []
    key = f"payment_failed:{invoice.id}"
    alert = get_alert_by_incident(session=session, incident_key=key, subject_id=invoice.id)
    if alert is None:
        return []
    facts = invoice_facts(session, invoice)
    return [
        Development(
            kind=AlertKind(alert.kind),
            incident_key=key,
            subject_id=invoice.id,
            customer_id=invoice.customer_id,
            facts=facts,
            amount=facts.amount,
            existing=alert,
            state=AlertState.RECOVERED,
            may_open=False,
        )
    ]


@rule("customer.subscription.deleted")
def subscription_ended(session: Session, applied: AppliedEvent) -> list[Development]:
    subscription = _stored(session, Subscription, applied, "subscription")
    if subscription is None or subscription.status != "canceled":
        return []
    items = subscription_items(session, subscription.id)
    ended = subscription.ended_at or subscription.canceled_at or applied.event.created
    in_trial = subscription.trial_end is not None and ended <= subscription.trial_end
    facts = subscription_facts(session, subscription, items, as_active=not in_trial)
    latest = latest_alert_for_subject(
        session=session, subject_id=subscription.id, kinds=CANCEL_KINDS
    )
    existing = latest if latest is not None and latest.kind != AlertKind.CANCEL_UNDONE else None
    return [
        _cancellation(
            AlertKind.CANCELED,
            subscription,
            facts,
            f"cancellation:{subscription.id}:ended",
            existing,
        )
    ]


@rule("customer.subscription.updated")
def subscription_updated(session: Session, applied: AppliedEvent) -> list[Development]:
    subscription = _stored(session, Subscription, applied, "subscription")
    if subscription is None or not _was_applied(applied, subscription.id):
        return []
    items = subscription_items(session, subscription.id)
    found = [_schedule_change(session, applied, subscription, items)]
    before = applied.event.previous_attributes
    if previous.status(before) == "trialing" and subscription.status in MRR_STATUSES:
        found.append(
            _simple(
                session,
                AlertKind.TRIAL_CONVERTED,
                subscription,
                items,
                f"trial_converted:{subscription.id}",
            )
        )
    elif previous.items_changed(before) and subscription.status in MRR_STATUSES:
        found.append(_plan_change(session, applied, subscription, items))
    return [development for development in found if development is not None]


def _schedule_change(
    session: Session, applied: AppliedEvent, subscription: Subscription, items: list
) -> Development | None:
    before = previous.was_cancel_scheduled(applied.event.previous_attributes)
    now = subscription.cancel_at_period_end or subscription.cancel_at is not None
    if before is None or subscription.status == "canceled":
        return None
    moved = (
        before
        and now
        and previous.old_cancel_at(applied.event.previous_attributes) != subscription.cancel_at
    )
    if before == now and not moved:
        return None
    kind = AlertKind.CANCEL_SCHEDULED if now else AlertKind.CANCEL_UNDONE
    facts = subscription_facts(session, subscription, items)
    latest = latest_alert_for_subject(
        session=session, subject_id=subscription.id, kinds=CANCEL_KINDS
    )
    existing = latest if latest is not None and latest.kind != AlertKind.CANCELED else None
    return _cancellation(
        kind, subscription, facts, f"cancellation:{subscription.id}:{applied.event.id}", existing
    )


def _cancellation(
    kind: AlertKind, subscription: Subscription, facts: AlertFacts, key: str, existing: Alert | None
) -> Development:
    return Development(
        kind=kind,
        incident_key=key,
        subject_id=subscription.id,
        customer_id=subscription.customer_id,
        facts=facts,
        amount=facts.mrr,
        existing=existing,
    )


def _simple(
    session: Session,
    kind: AlertKind,
    subscription: Subscription,
    items: list,
    key: str,
    *,
    as_active: bool = False,
) -> Development:
    facts = subscription_facts(session, subscription, items, as_active=as_active)
    return Development(
        kind=kind,
        incident_key=key,
        subject_id=subscription.id,
        customer_id=subscription.customer_id,
        facts=facts,
        amount=facts.mrr,
        existing=get_alert_by_incident(
            session=session, incident_key=key, subject_id=subscription.id
        ),
    )


def _plan_change(
    session: Session, applied: AppliedEvent, subscription: Subscription, items: list
) -> Development | None:
    old_items = previous.old_items(applied.event.previous_attributes, items)
    if old_items is None:
        return None
    facts = subscription_facts(session, subscription, items)
    old_mrr, old_plan = (
        items_mrr(old_items, list(subscription.discounts or [])),
        plan_label(old_items),
    )
    delta = (facts.mrr or 0) - old_mrr
    if delta > 0:
        kind = AlertKind.UPGRADE
    elif delta < 0:
        kind = AlertKind.DOWNGRADE
    elif old_plan != facts.plan:
        kind = AlertKind.PLAN_CHANGED
    else:
        return None
    facts = facts.model_copy(update={"old_mrr": old_mrr, "old_plan": old_plan})
    key = f"plan_change:{subscription.id}:{applied.event.id}"
    return Development(
        kind=kind,
        incident_key=key,
        subject_id=subscription.id,
        customer_id=subscription.customer_id,
        facts=facts,
        amount=abs(delta),
        existing=get_alert_by_incident(
            session=session, incident_key=key, subject_id=subscription.id
        ),
    )


@rule("customer.subscription.trial_will_end")
def trial_ending(session: Session, applied: AppliedEvent) -> list[Development]:
    subscription = _stored(session, Subscription, applied, "subscription")
    if subscription is None or subscription.status != "trialing" or subscription.trial_end is None:
        return []
    items = subscription_items(session, subscription.id)
    key = f"trial_ending:{subscription.id}:{_unix(subscription.trial_end)}"
    return [_simple(session, AlertKind.TRIAL_ENDING, subscription, items, key, as_active=True)]


@rule("charge.refunded")
def charge_refunded(session: Session, applied: AppliedEvent) -> list[Development]:
    charge = _stored(session, Charge, applied, "charge")
    if charge is None or charge.amount_refunded <= 0 or not _was_applied(applied, charge.id):
        return []
    before = previous.value(applied.event.previous_attributes, "amount_refunded")
    refunded_now = charge.amount_refunded - (before if isinstance(before, int) else 0)
    if refunded_now <= 0:
        return []
    key = f"refund:{charge.id}:{charge.amount_refunded}"
    facts = refund_facts(session, charge, refunded_now=refunded_now)
    return [
        Development(
            kind=AlertKind.REFUND,
            incident_key=key,
            subject_id=charge.id,
            customer_id=charge.customer_id,
            facts=facts,
            amount=refunded_now,
            existing=get_alert_by_incident(session=session, incident_key=key, subject_id=charge.id),
        )
    ]


def _unix(moment: datetime) -> int:
    return int(moment.timestamp())

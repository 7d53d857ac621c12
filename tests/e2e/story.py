"""One customer's life in Stripe events, as Stripe would send them in either API shape.

Grace signs up for a 14-day trial of Basic ($49/month) on 1 March 2026, converts, upgrades
to 2 seats of Pro ($99/month each), fails to pay the proration invoice twice, pays it on
the third attempt, schedules a cancellation, is cancelled, and is refunded part of her
last payment. Each step is a list of events in the order Stripe emits them; several share
one `created` second, as they do in Stripe.

Numbers a reader can check: MRR $49 (trial converts: new +4900), then $198 (expansion
+14900), then $0 when the cancellation is requested (churn -19800). Paid: $49 + $104.30;
refunded $50; lifetime value $103.30.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests import factories as f
from tests.factories.common import DAY, is_basil

MARCH = 1_772_323_200  # 2026-03-01T00:00:00Z
HOUR = 3600
BASIC_AMOUNT, PRO_AMOUNT, PRO_SEATS = 4900, 9900, 2
PRORATION = 10430  # what the upgrade's proration invoice asks for
REFUNDED = 5000
DECLINE_MESSAGE, DECLINE_CODE = "Your card was declined.", "card_declined"
CANCEL_FEEDBACK = "too_expensive"


def at(day: int, hour: int = 9, second: int = 0) -> int:
    """A Unix time in March 2026."""
    return MARCH + (day - 1) * DAY + hour * HOUR + second


@dataclass
class Step:
    name: str
    events: list[dict[str, Any]]


@dataclass
class Story:
    api_version: str
    customer_id: str
    subscription_id: str
    invoice_ids: list[str]
    charge_ids: list[str]
    roles: dict[str, str] = field(default_factory=dict)  # every Stripe id in the story -> a name
    steps: list[Step] = field(default_factory=list)

    @property
    def events(self) -> list[dict[str, Any]]:
        return [event for step in self.steps for event in step.events]

    def step(self, name: str) -> Step:
        return next(step for step in self.steps if step.name == name)


def customer_life(api_version: str) -> Story:
    return _Builder(api_version).build()


class _Builder:
    def __init__(self, api_version: str) -> None:
        self.v = api_version
        self.basil = is_basil(api_version)
        self.customer = f.customer(
            api_version=api_version, name="Grace Hopper", email="grace@navy.example", created=at(1)
        )
        self.cus = self.customer["id"]
        self.basic = f.price(api_version=api_version, unit_amount=BASIC_AMOUNT, nickname="Basic")
        self.pro = f.price(api_version=api_version, unit_amount=PRO_AMOUNT, nickname="Pro")
        self.item_id = f.new_id("si")
        self.sub_id = f.new_id("sub")
        self.trial_end = at(15, 0)
        self.period = (self.trial_end, self.trial_end + 31 * DAY)
        self.invoices = [f.new_id("in"), f.new_id("in")]
        self.charges = [f.new_id("ch") for _ in range(4)]
        self.intents = [f.new_id("pi"), f.new_id("pi")]
        self.refund_id = f.new_id("re")
        self.payments = [f.new_id("inpay"), f.new_id("inpay")]

    # -- objects ------------------------------------------------------------------------

    def sub(self, **changes: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "status": "active",
            "price": self.basic,
            "quantity": 1,
            "period": self.period,
            "trial_start": at(1, 0),
            "trial_end": self.trial_end,
        }
        values.update(changes)
        start, end = values.pop("period")
        item = f.item(values.pop("price"), values.pop("quantity"), id=self.item_id)
        return f.subscription(
            api_version=self.v, customer=self.cus, items=[item], id=self.sub_id, created=at(1),
            current_period_start=start, current_period_end=end, **values,
        )  # fmt: skip

    def old_items(self, sub: dict[str, Any]) -> dict[str, Any]:
        """`previous_attributes.items`: Stripe gives a changed array whole."""
        return {"object": "list", "data": sub["items"]["data"]}

    def invoice(self, index: int, **values: Any) -> dict[str, Any]:
        intent, charge = self.intents[index], values.pop("charge", None)
        if not self.basil:
            values.update(payment_intent=intent, charge=charge)
        return f.invoice(
            api_version=self.v, customer=self.cus, subscription=self.sub_id,
            id=self.invoices[index], number=f"GRACE-{index + 1:04d}", **values,
        )  # fmt: skip

    def charge(self, index: int, invoice: int, **values: Any) -> dict[str, Any]:
        return f.charge(
            api_version=self.v, customer=self.cus, id=self.charges[index],
            invoice=self.invoices[invoice], payment_intent=self.intents[invoice], **values,
        )  # fmt: skip

    def event(self, type: str, obj: dict[str, Any], created: int, **kw: Any) -> dict[str, Any]:
        return f.event(type, obj, created=created, api_version=self.v, **kw)

    def paid(self, index: int, charge: int, amount: int, when: int) -> list[dict[str, Any]]:
        """charge.succeeded, invoice.paid (and basil's invoice_payment.paid), one second."""
        invoice = self.invoice(
            index, status="paid", amount_due=amount, amount_paid=amount, paid_at=when,
            attempt_count=3 if index == 1 else 1, charge=self.charges[charge], created=at(18 if index else 15, 0),
        )  # fmt: skip
        events = [
            self.event("charge.succeeded", self.charge(charge, index, amount=amount, created=when), when),
            self.event("invoice.paid", invoice, when),
        ]  # fmt: skip
        if self.basil:
            payment = f.invoice_payment(
                api_version=self.v, invoice=self.invoices[index], id=self.payments[index],
                payment_intent=self.intents[index], amount_paid=amount, created=when,
            )  # fmt: skip
            events.append(self.event("invoice_payment.paid", payment, when))
        return events

    def failed(self, charge: int, attempt: int, when: int, retry: int) -> list[dict[str, Any]]:
        declined = self.charge(
            charge, 1, amount=PRORATION, status="failed", failure_code=DECLINE_CODE,
            failure_message=DECLINE_MESSAGE, created=when,
        )  # fmt: skip
        invoice = self.invoice(
            1, amount_due=PRORATION, attempt_count=attempt, next_payment_attempt=retry,
            charge=self.charges[charge], created=at(18, 0), billing_reason="subscription_update",
        )  # fmt: skip
        return [
            self.event("charge.failed", declined, when),
            self.event("invoice.payment_failed", invoice, when),
        ]

    # -- the story ----------------------------------------------------------------------

    def build(self) -> Story:
        story = Story(self.v, self.cus, self.sub_id, list(self.invoices), list(self.charges))
        story.roles = {
            self.cus: "customer", self.sub_id: "subscription", self.item_id: "item",
            self.basic["id"]: "basic", self.pro["id"]: "pro",
            self.basic["product"]: "basic_product", self.pro["product"]: "pro_product",
            **{ident: f"invoice{n}" for n, ident in enumerate(self.invoices)},
            **{ident: f"charge{n}" for n, ident in enumerate(self.charges)},
            **{ident: f"intent{n}" for n, ident in enumerate(self.intents)},
            self.refund_id: "refund",
            **{ident: f"invoice_payment{n}" for n, ident in enumerate(self.payments)},
        }  # fmt: skip
        trialing = self.sub(status="trialing", period=(at(1, 0), self.trial_end))
        active = self.sub()
        upgraded = self.sub(price=self.pro, quantity=PRO_SEATS)
        past_due = self.sub(status="past_due", price=self.pro, quantity=PRO_SEATS)
        scheduled = self.sub(
            price=self.pro, quantity=PRO_SEATS, cancel_at_period_end=True, cancel_at=self.period[1],
            canceled_at=at(26),
            cancellation_details={"comment": None, "feedback": CANCEL_FEEDBACK, "reason": "cancellation_requested"},
        )  # fmt: skip
        ended = {**scheduled, "status": "canceled", "ended_at": at(30), "canceled_at": at(30)}
        converted_before: dict[str, Any] = {"status": "trialing"}
        if self.basil:
            converted_before["items"] = self.old_items(trialing)
        else:
            converted_before.update(
                current_period_start=at(1, 0), current_period_end=self.trial_end
            )
        refunded_charge = self.charge(
            3, 1, amount=PRORATION, amount_refunded=REFUNDED, created=at(23)
        )
        refund = f.refund(
            api_version=self.v, charge=self.charges[3], id=self.refund_id, amount=REFUNDED, reason="requested_by_customer",
            payment_intent=self.intents[1], created=at(30),
        )  # fmt: skip
        no_cancel = {"cancel_at_period_end": False, "cancel_at": None, "canceled_at": None,
                     "cancellation_details": {"comment": None, "feedback": None, "reason": None}}  # fmt: skip
        story.steps = [
            Step("signup", [self.event("customer.created", self.customer, at(1))]),
            Step("trial", [self.event("customer.subscription.created", trialing, at(1))]),
            Step("trial_will_end", [self.event("customer.subscription.trial_will_end", trialing, at(12))]),
            Step("converted", [
                self.event("customer.subscription.updated", active, at(15, 0, 5), previous_attributes=converted_before),
                *self.paid(0, 0, BASIC_AMOUNT, at(15, 0, 7)),
            ]),
            Step("upgrade", [
                self.event("customer.subscription.updated", upgraded, at(18, 0),
                           previous_attributes={"items": self.old_items(active)}),
            ]),
            Step("failed_1", [
                *self.failed(1, 1, at(18, 1), retry=at(21, 1)),
                self.event("customer.subscription.updated", past_due, at(18, 1), previous_attributes={"status": "active"}),
            ]),
            Step("failed_2", self.failed(2, 2, at(21, 1), retry=at(25, 1))),
            Step("recovered", [
                *self.paid(1, 3, PRORATION, at(23)),
                self.event("customer.subscription.updated", upgraded, at(23), previous_attributes={"status": "past_due"}),
            ]),
            Step("cancel_scheduled", [
                self.event("customer.subscription.updated", scheduled, at(26), previous_attributes=no_cancel),
            ]),
            Step("deleted", [self.event("customer.subscription.deleted", ended, at(30))]),
            Step("refund", [
                self.event("charge.refunded", refunded_charge, at(30),
                           previous_attributes={"amount_refunded": 0, "refunded": False}),
                self.event("refund.created", refund, at(30)),
            ]),
        ]  # fmt: skip
        return story

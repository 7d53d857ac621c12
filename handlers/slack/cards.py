"""The small typed values the Block Kit builders render from.

`AlertFacts` is what an alert knows about its incident (stored as JSON on the alert row, so
a message can be re-rendered later exactly as it was, plus its new state). `AlertCard` adds
the alert's state and follow-up task. Nothing here touches the database or Slack.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from pydantic import BaseModel, ConfigDict


class AlertFacts(BaseModel):
    model_config = ConfigDict(extra="ignore")

    customer_id: str | None = None
    customer_name: str | None = None
    customer_email: str | None = None
    livemode: bool = False
    currency: str | None = None
    amount: int | None = None  # minor units of `currency`: amount due, or the refund
    invoice_id: str | None = None
    invoice_number: str | None = None
    one_off_invoice: bool = False  # an invoice of no subscription: no MRR at stake
    hosted_invoice_url: str | None = None
    attempt: int | None = None
    decline_reason: str | None = None
    next_retry_at: datetime | None = None
    paid_at: datetime | None = None
    subscription_id: str | None = None
    plan: str | None = None
    old_plan: str | None = None
    mrr_currency: str | None = None
    mrr: int | None = None  # minor units, rounded once from storage.mrr's exact value
    old_mrr: int | None = None
    cancel_at: datetime | None = None
    ended_at: datetime | None = None
    cancellation_reason: str | None = None
    cancellation_feedback: str | None = None
    cancellation_comment: str | None = None
    trial_end: datetime | None = None
    has_payment_method: bool | None = None
    charge_id: str | None = None
    refund_reason: str | None = None
    charge_amount: int | None = None
    amount_refunded: int | None = None  # everything refunded on the charge so far

    def to_json(self) -> dict:
        return self.model_dump(mode="json", exclude_none=True)


@dataclass(frozen=True, slots=True)
class TaskInfo:
    id: int
    title: str
    assignee: str
    due_date: date | None
    status: str


@dataclass(frozen=True, slots=True)
class AlertCard:
    alert_id: int
    kind: str
    state: str
    facts: AlertFacts
    task: TaskInfo | None = None
    handled_by: str | None = None
    handled_at: datetime | None = None
    recovered_at: datetime | None = None

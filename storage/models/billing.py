"""Our own rows for Stripe's billing objects.

Each row keeps the raw Stripe object (`raw`) beside the columns we query, and remembers
which version of the object it holds (`version_at`, `version_event_id`): the `created`
time of the event that last wrote it, or the time it was fetched from Stripe's API. The
rules for when newer data may replace older data live in `storage/versioning.py`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Index
from sqlmodel import Field, SQLModel

from storage.types import PortableJSON, UTCDateTime, utcnow

ID = 255  # Stripe ids are at most 255 characters


class Versioned(SQLModel):
    livemode: bool = False
    raw: dict[str, Any] = Field(default_factory=dict, sa_type=PortableJSON)
    version_at: datetime = Field(sa_type=UTCDateTime)
    version_event_id: str | None = Field(default=None, max_length=ID)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class Customer(Versioned, table=True):
    __tablename__ = "customer"

    id: str = Field(primary_key=True, max_length=ID)
    email: str | None = Field(default=None, max_length=512)
    email_normalized: str | None = Field(default=None, max_length=512, index=True)
    name: str | None = Field(default=None, max_length=512)
    name_normalized: str | None = Field(default=None, max_length=512)
    currency: str | None = Field(default=None, max_length=3)
    delinquent: bool = False
    has_payment_method: bool | None = None
    deleted: bool = False
    created: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Subscription(Versioned, table=True):
    __tablename__ = "subscription"

    id: str = Field(primary_key=True, max_length=ID)
    customer_id: str = Field(max_length=ID, index=True)
    status: str = Field(max_length=32, index=True)
    currency: str = Field(max_length=3)
    collection_method: str | None = Field(default=None, max_length=32)
    cancel_at_period_end: bool = False
    cancel_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    canceled_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    ended_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    cancellation_reason: str | None = Field(default=None, max_length=64)
    cancellation_feedback: str | None = Field(default=None, max_length=64)
    cancellation_comment: str | None = Field(default=None, max_length=5000)
    current_period_start: datetime | None = Field(default=None, sa_type=UTCDateTime)
    current_period_end: datetime | None = Field(default=None, sa_type=UTCDateTime)
    trial_start: datetime | None = Field(default=None, sa_type=UTCDateTime)
    trial_end: datetime | None = Field(default=None, sa_type=UTCDateTime)
    # Discounts that apply: [{"coupon": id, "duration": "forever"|"once"|"repeating",
    # "percent_off": "25.5"|None, "amount_off": int|None, "currency": str|None}]
    discounts: list[dict[str, Any]] = Field(default_factory=list, sa_type=PortableJSON)
    created: datetime | None = Field(default=None, sa_type=UTCDateTime)


class SubscriptionItem(SQLModel, table=True):
    """One line of a subscription. Replaced wholesale whenever its subscription is written,
    so the items always belong to the same version of the subscription as its row."""

    __tablename__ = "subscription_item"

    id: str = Field(primary_key=True, max_length=ID)
    subscription_id: str = Field(max_length=ID, index=True)
    price_id: str | None = Field(default=None, max_length=ID)
    product_id: str | None = Field(default=None, max_length=ID)
    plan_name: str | None = Field(default=None, max_length=512)
    currency: str = Field(max_length=3)
    unit_amount: int | None = Field(default=None, sa_type=BigInteger)
    unit_amount_decimal: str | None = Field(default=None, max_length=64)
    billing_scheme: str = Field(default="per_unit", max_length=16)
    tiers_mode: str | None = Field(default=None, max_length=16)
    tiers: list[dict[str, Any]] | None = Field(default=None, sa_type=PortableJSON)
    interval: str = Field(max_length=8)
    interval_count: int = 1
    usage_type: str = Field(default="licensed", max_length=16)
    quantity: int = 1
    current_period_start: datetime | None = Field(default=None, sa_type=UTCDateTime)
    current_period_end: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Invoice(Versioned, table=True):
    __tablename__ = "invoice"
    __table_args__ = (Index("ix_invoice_customer_status", "customer_id", "status"),)

    id: str = Field(primary_key=True, max_length=ID)
    customer_id: str | None = Field(default=None, max_length=ID)
    subscription_id: str | None = Field(default=None, max_length=ID, index=True)
    status: str | None = Field(default=None, max_length=32)
    number: str | None = Field(default=None, max_length=255)
    currency: str = Field(max_length=3)
    billing_reason: str | None = Field(default=None, max_length=64)
    collection_method: str | None = Field(default=None, max_length=32)
    amount_due: int = Field(default=0, sa_type=BigInteger)
    amount_paid: int = Field(default=0, sa_type=BigInteger)
    amount_remaining: int = Field(default=0, sa_type=BigInteger)
    total: int = Field(default=0, sa_type=BigInteger)
    attempt_count: int = 0
    attempted: bool = False
    next_payment_attempt: datetime | None = Field(default=None, sa_type=UTCDateTime)
    due_date: datetime | None = Field(default=None, sa_type=UTCDateTime)
    paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    hosted_invoice_url: str | None = Field(default=None, max_length=2048)
    payment_intent_id: str | None = Field(default=None, max_length=ID)
    charge_id: str | None = Field(default=None, max_length=ID)
    last_error_code: str | None = Field(default=None, max_length=255)
    last_error_message: str | None = Field(default=None, max_length=5000)
    period_start: datetime | None = Field(default=None, sa_type=UTCDateTime)
    period_end: datetime | None = Field(default=None, sa_type=UTCDateTime)
    created: datetime | None = Field(default=None, sa_type=UTCDateTime)


class InvoicePayment(Versioned, table=True):
    """From 2025-03-31.basil on, the link between an invoice and the payment that paid it."""

    __tablename__ = "invoice_payment"

    id: str = Field(primary_key=True, max_length=ID)
    invoice_id: str = Field(max_length=ID, index=True)
    payment_intent_id: str | None = Field(default=None, max_length=ID, index=True)
    charge_id: str | None = Field(default=None, max_length=ID, index=True)
    status: str | None = Field(default=None, max_length=32)
    amount_paid: int | None = Field(default=None, sa_type=BigInteger)
    currency: str = Field(max_length=3)
    created: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Charge(Versioned, table=True):
    __tablename__ = "charge"

    id: str = Field(primary_key=True, max_length=ID)
    customer_id: str | None = Field(default=None, max_length=ID, index=True)
    invoice_id: str | None = Field(default=None, max_length=ID, index=True)
    payment_intent_id: str | None = Field(default=None, max_length=ID, index=True)
    status: str = Field(max_length=32)
    currency: str = Field(max_length=3)
    amount: int = Field(default=0, sa_type=BigInteger)
    amount_captured: int = Field(default=0, sa_type=BigInteger)
    amount_refunded: int = Field(default=0, sa_type=BigInteger)
    paid: bool = False
    captured: bool = False
    refunded: bool = False
    failure_code: str | None = Field(default=None, max_length=255)
    failure_message: str | None = Field(default=None, max_length=5000)
    created: datetime | None = Field(default=None, sa_type=UTCDateTime)


class Refund(Versioned, table=True):
    __tablename__ = "refund"

    id: str = Field(primary_key=True, max_length=ID)
    charge_id: str | None = Field(default=None, max_length=ID, index=True)
    payment_intent_id: str | None = Field(default=None, max_length=ID)
    customer_id: str | None = Field(default=None, max_length=ID, index=True)
    status: str | None = Field(default=None, max_length=32)
    reason: str | None = Field(default=None, max_length=64)
    currency: str = Field(max_length=3)
    amount: int = Field(default=0, sa_type=BigInteger)
    created: datetime | None = Field(default=None, sa_type=UTCDateTime)

"""The MRR ledger: every change of a customer's MRR, with the event that caused it.

Amounts are integers in **millionths of a minor unit** (`LEDGER_SCALE`): $49.00 is
4_900_000_000. MRR is exact arithmetic (a $10 weekly plan is 4333.33… cents a month), and
the ledger must be summed by the database (MRR at any past moment is the sum of the lines
before it), so a Decimal-as-string could not be summed and a float would drift. Integers
at this scale sum exactly on SQLite and PostgreSQL; each customer's MRR is rounded to a
millionth of a cent once, when it is stored, and rounded to the minor unit only when shown.

A line's amount is always the difference between two stored customer MRR values, so the
lines of a customer add up exactly to their `CustomerMrr.mrr`.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

from sqlalchemy import BigInteger, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from storage.types import UTCDateTime, utcnow

LEDGER_SCALE = 1_000_000


def to_ledger_units(minor: Decimal) -> int:
    """Exact minor units (Decimal) to the ledger's integer units, rounded half-even."""
    return int((minor * LEDGER_SCALE).to_integral_value(rounding=ROUND_HALF_EVEN))


def from_ledger_units(units: int) -> Decimal:
    """Ledger units back to exact minor units (a Decimal, not yet rounded)."""
    return Decimal(units) / LEDGER_SCALE


class MovementKind(StrEnum):
    NEW = "new"  # first MRR > 0 (a trial converting included)
    EXPANSION = "expansion"
    CONTRACTION = "contraction"
    CHURN = "churn"  # customer MRR went to 0
    REACTIVATION = "reactivation"  # MRR > 0 again after churn
    PAUSED = "paused"  # MRR left because a subscription paused: not churn, not a movement
    RESUMED = "resumed"  # that MRR came back


MOVEMENTS = (
    MovementKind.NEW,
    MovementKind.EXPANSION,
    MovementKind.CONTRACTION,
    MovementKind.CHURN,
    MovementKind.REACTIVATION,
)
PAUSE_LINES = (MovementKind.PAUSED, MovementKind.RESUMED)


class MrrMovement(SQLModel, table=True):
    __tablename__ = "mrr_movement"
    __table_args__ = (
        # One event writes at most one line of each kind per customer and currency, so a
        # replayed or retried event can never count twice.
        UniqueConstraint(
            "customer_id", "currency", "event_id", "kind", name="uq_mrr_movement_event"
        ),
        Index("ix_mrr_movement_customer_time", "customer_id", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=255)
    currency: str = Field(max_length=3)
    kind: str = Field(max_length=16)
    amount: int = Field(sa_type=BigInteger)  # ledger units, signed (churn and contraction < 0)
    mrr_after: int = Field(sa_type=BigInteger)  # the customer's MRR in `currency` after this line
    occurred_at: datetime = Field(sa_type=UTCDateTime, index=True)  # the event's `created`
    event_id: str = Field(max_length=255)  # a Stripe event id, or "backfill:..." for a rebuild
    recorded_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)


class CustomerMrr(SQLModel, table=True):
    """The ledger's memory of each customer's MRR per currency, as last recorded.

    `paused` is the value of the customer's paused subscriptions as the store last showed
    it; `paused_out` is the part of it that left MRR through a `paused` line and may come
    back as `resumed` (a trial that pauses never counted, so its resumption is `new`).
    """

    __tablename__ = "customer_mrr"

    customer_id: str = Field(primary_key=True, max_length=255)
    currency: str = Field(primary_key=True, max_length=3)
    mrr: int = Field(default=0, sa_type=BigInteger)
    paused: int = Field(default=0, sa_type=BigInteger)
    paused_out: int = Field(default=0, sa_type=BigInteger)
    first_paid_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    changed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    event_id: str | None = Field(default=None, max_length=255)
    updated_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)

"""Every table billbot owns. Importing this package registers them all on `SQLModel.metadata`."""

from storage.models.billing import (
    Charge,
    Customer,
    Invoice,
    InvoicePayment,
    Refund,
    Subscription,
    SubscriptionItem,
)
from storage.models.inbox import EventStatus, StripeEvent
from storage.models.ledger import CustomerMrr, MovementKind, MrrMovement
from storage.models.timeline import TimelineEntry

__all__ = [
    "Charge",
    "Customer",
    "CustomerMrr",
    "EventStatus",
    "Invoice",
    "InvoicePayment",
    "MovementKind",
    "MrrMovement",
    "Refund",
    "StripeEvent",
    "Subscription",
    "SubscriptionItem",
    "TimelineEntry",
]

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
from storage.models.sync import SyncCursor, SyncStatus
from storage.models.timeline import TimelineEntry

__all__ = [
    "Charge",
    "Customer",
    "EventStatus",
    "Invoice",
    "InvoicePayment",
    "Refund",
    "StripeEvent",
    "Subscription",
    "SubscriptionItem",
    "SyncCursor",
    "SyncStatus",
    "TimelineEntry",
]

"""Every table billbot owns. Importing this package registers them all on `SQLModel.metadata`."""

from storage.models.alerts import Alert, AlertKind, AlertState
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
from storage.models.jobs import JobLease, JobRun, PostedItem, RunStatus, RunTrigger
from storage.models.ledger import CustomerMrr, MovementKind, MrrMovement
from storage.models.lookup_indexes import customer_name_index  # noqa: F401
from storage.models.outbox import Operation, OutboxMessage, OutboxStatus
from storage.models.sync import SyncCursor, SyncStatus, WebhookRejection
from storage.models.tasks import Task, TaskAction, TaskAudit, TaskStatus
from storage.models.timeline import TimelineEntry

__all__ = [
    "Alert",
    "AlertKind",
    "AlertState",
    "Operation",
    "OutboxMessage",
    "OutboxStatus",
    "Task",
    "TaskAction",
    "TaskAudit",
    "TaskStatus",
    "Charge",
    "Customer",
    "CustomerMrr",
    "EventStatus",
    "Invoice",
    "InvoicePayment",
    "JobLease",
    "JobRun",
    "MovementKind",
    "MrrMovement",
    "PostedItem",
    "Refund",
    "RunStatus",
    "RunTrigger",
    "StripeEvent",
    "Subscription",
    "SubscriptionItem",
    "SyncCursor",
    "SyncStatus",
    "TimelineEntry",
    "WebhookRejection",
]

"""Apply a Stripe object read from the API (backfill, reconciliation) through the same
conversion and version guard as webhook events.

`version_at` is when the object was fetched: an event created later still wins over it, and
it wins over events created before it. Nothing here posts to Slack; callers decide that.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers.stripe.charges import apply_charge, apply_refund
from handlers.stripe.convert import ConversionError, Source
from handlers.stripe.customers import apply_customer
from handlers.stripe.invoices import apply_invoice, apply_invoice_payment
from handlers.stripe.registry import Change
from handlers.stripe.subscriptions import apply_subscription

ObjectApplier = Callable[[Session, dict[str, Any], Source], list[Change]]

APPLIERS: dict[str, ObjectApplier] = {
    "customer": apply_customer,
    "subscription": apply_subscription,
    "invoice": apply_invoice,
    "invoice_payment": apply_invoice_payment,
    "charge": apply_charge,
    "refund": apply_refund,
}


def apply_object(
    session: Session,
    obj: dict[str, Any],
    *,
    version_at: datetime,
    source_event_id: str | None = None,
) -> list[Change]:
    """Store one fetched object (dispatching on `obj["object"]`) unless the store holds a
    newer version. `source_event_id` names the event the object came from, if any."""
    if version_at.tzinfo is None:
        raise ValueError("version_at must be timezone-aware (UTC)")
    kind = obj.get("object")
    applier = APPLIERS.get(kind) if isinstance(kind, str) else None
    if applier is None:
        raise ConversionError(f"cannot apply a Stripe object of type {kind!r}")
    return applier(session, obj, Source(at=version_at, event_id=source_event_id))

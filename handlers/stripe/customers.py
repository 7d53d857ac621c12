"""Customers: `customer.created`, `customer.updated`, `customer.deleted`.

A deleted customer keeps its row with `deleted=True`: its invoices, charges and timeline
still point at it, and `billbot lookup` can say it was deleted.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from handlers.stripe.convert import (
    Source,
    expandable_id,
    flag,
    optional_currency,
    require_id,
    text,
    timestamp,
)
from handlers.stripe.events import StripeEvent
from handlers.stripe.recording import change_for
from handlers.stripe.registry import Change, handles
from storage.billing import upsert_customer
from storage.lookup import normalize_email, normalize_name
from storage.versioning import Version

CUSTOMER_EVENTS = ("customer.created", "customer.updated", "customer.deleted")


@handles(*CUSTOMER_EVENTS)
def apply_customer_event(session: Session, event: StripeEvent) -> list[Change]:
    return apply_customer(session, event.object, Source.from_event(event))


def apply_customer(session: Session, obj: dict[str, Any], source: Source) -> list[Change]:
    deleted = source.event_type == "customer.deleted" or obj.get("deleted") is True
    values = customer_values(obj, source, deleted=deleted)
    version = Version(
        at=source.at, event_id=source.event_id, state="deleted" if deleted else "active"
    )
    result = upsert_customer(session=session, values=values, version=version)
    return [change_for("customer", result, source, customer_id=result.row.id)]


def customer_values(obj: dict[str, Any], source: Source, *, deleted: bool) -> dict[str, Any]:
    customer_id = require_id(obj)
    if deleted and "created" not in obj:
        # A deletion stub ({id, object, deleted}) says only that: keep what we knew.
        return {"id": customer_id, "deleted": True, "livemode": source.livemode_of(obj)}
    email, name = text(obj.get("email"), 512), text(obj.get("name"), 512)
    values = {
        "id": customer_id,
        "livemode": source.livemode_of(obj),
        "raw": obj,
        "email": email,
        "email_normalized": normalize_email(email),
        "name": name,
        "name_normalized": normalize_name(name),
        "currency": optional_currency(obj.get("currency"), field="customer.currency"),
        "delinquent": flag(obj.get("delinquent")),
        "deleted": deleted,
        "created": timestamp(obj.get("created")),
    }
    has_method = has_payment_method(obj)
    if has_method is not None:
        values["has_payment_method"] = has_method
    return values


def has_payment_method(obj: dict[str, Any]) -> bool | None:
    """Whether the customer has a default way to pay, or None when the payload does not say."""
    settings = obj.get("invoice_settings")
    says = (
        isinstance(settings, dict) and "default_payment_method" in settings
    ) or "default_source" in obj
    if not says:
        return None
    method = (
        expandable_id(settings.get("default_payment_method"))
        if isinstance(settings, dict)
        else None
    )
    return bool(method or expandable_id(obj.get("default_source")))

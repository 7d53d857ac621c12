"""A test-local `apply_object`, until the real one (`handlers.stripe.objects`) is merged.

It upserts customers, subscriptions (without items) and invoices with the same version
guard as webhooks (`storage.versioning.should_replace`), and only records charges and
refunds, which is enough to test paging, resuming, pacing and drift. The integrator
switches these tests to the real `apply_object` after merging.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers.stripe.registry import Change
from storage.models import Customer, Invoice, Subscription
from storage.types import from_unix
from storage.versioning import Version, should_replace

MODELS = {"customer": Customer, "subscription": Subscription, "invoice": Invoice}


class LocalApply:
    def __init__(self) -> None:
        self.seen: list[tuple[str, str, datetime]] = []  # (object type, id, version_at)
        self.refuse: set[str] = set()  # ids that fail conversion (ValueError)

    def __call__(
        self,
        session: Session,
        obj: dict[str, Any],
        *,
        version_at: datetime,
        source_event_id: str | None = None,
    ) -> list[Change]:
        kind, object_id = obj["object"], obj["id"]
        if object_id in self.refuse:
            raise ValueError(f"cannot convert {object_id}")
        self.seen.append((kind, object_id, version_at))
        model = MODELS.get(kind)
        if model is None:
            return [Change(kind, object_id, obj.get("customer"), applied=True)]
        stored = session.get(model, object_id)
        incoming = Version(version_at, source_event_id, _state(kind, obj))
        old = (
            Version(stored.version_at, stored.version_event_id, _state(kind, stored.raw))
            if stored
            else None
        )
        customer_id = object_id if kind == "customer" else obj.get("customer")
        if not should_replace(kind, old, incoming):
            return [Change(kind, object_id, customer_id, applied=False)]
        row = stored or model(id=object_id, version_at=version_at, **_required(kind, obj))
        for name, value in {**_columns(kind, obj), "raw": obj, "version_at": version_at}.items():
            setattr(row, name, value)
        row.version_event_id = source_event_id
        session.add(row)
        return [Change(kind, object_id, customer_id, applied=True)]


def _state(kind: str, obj: dict[str, Any]) -> str | None:
    if kind == "customer":
        return "deleted" if obj.get("deleted") else "active"
    return obj.get("status")


def _required(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    if kind == "subscription":
        return {
            "customer_id": obj["customer"],
            "status": obj["status"],
            "currency": obj["currency"],
        }
    if kind == "invoice":
        return {"currency": obj["currency"]}
    return {}


def _columns(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    if kind == "customer":
        return {
            "email": obj.get("email"),
            "name": obj.get("name"),
            "created": from_unix(obj.get("created")),
        }
    if kind == "subscription":
        return {"status": obj["status"], "canceled_at": from_unix(obj.get("canceled_at"))}
    return {
        "status": obj.get("status"),
        "amount_paid": obj.get("amount_paid") or 0,
        "customer_id": obj.get("customer"),
    }

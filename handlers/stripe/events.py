"""The Stripe event envelope, read once at the boundary.

`parse_event` turns a raw event (bytes, text or an already-decoded dict) into a small typed
value. Everything past `handlers/stripe/` works with that value and with our own rows, never
with the raw dict.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson

from storage.types import utc_datetime


class InvalidEvent(ValueError):
    """The body is not JSON, or not a Stripe event."""


@dataclass(frozen=True, slots=True)
class StripeEvent:
    id: str
    type: str
    created: datetime
    livemode: bool
    api_version: str | None
    object: dict[str, Any] = field(repr=False)
    previous_attributes: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def object_id(self) -> str | None:
        """The id of `data.object`; None for objects that have none (`invoice.upcoming`)."""
        value = self.object.get("id")
        return value if isinstance(value, str) and value else None

    @property
    def object_type(self) -> str | None:
        value = self.object.get("object")
        return value if isinstance(value, str) else None

    @property
    def lane_owner(self) -> tuple[str | None, str | None]:
        """Whose event this is, for the inbox's lanes (`storage.lanes.lane_of`): (owner,
        parent). The owner is a customer's own id, else the customer `data.object` names
        (an id or an expanded customer). A refund and an invoice payment name no customer:
        they follow their parent's lane (the charge's, the invoice's: `parent`, looked up
        among the stored events), with the parent's id as owner when none is stored. Any
        other object without a customer is its own owner."""
        obj = self.object
        if obj.get("object") == "customer":
            return self.object_id, None
        customer = _expandable_id(obj.get("customer"))
        if customer:
            return customer, None
        parent = _expandable_id(obj.get(_PARENT_FIELD.get(self.object_type or "", "")))
        return (parent, parent) if parent else (self.object_id, None)


_PARENT_FIELD = {"refund": "charge", "invoice_payment": "invoice"}


def _expandable_id(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def parse_event(body: bytes | str | dict[str, Any]) -> StripeEvent:
    if isinstance(body, dict):
        data = body
    else:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            raise InvalidEvent("body is not valid JSON") from exc
    if not isinstance(data, dict):
        raise InvalidEvent("body is not a JSON object")
    if data.get("object") != "event":
        kind = data.get("object")
        if kind == "v2.core.event":
            raise InvalidEvent("thin (v2) events are not supported; send snapshot events")
        raise InvalidEvent("body is not a Stripe event (object != 'event')")
    event_id, event_type, created = data.get("id"), data.get("type"), data.get("created")
    if not isinstance(event_id, str) or not event_id.startswith("evt_") or len(event_id) > 255:
        raise InvalidEvent("event has no valid 'id'")
    if not isinstance(event_type, str) or not event_type or len(event_type) > 255:
        raise InvalidEvent("event has no 'type'")
    if not isinstance(created, int) or isinstance(created, bool) or created <= 0:
        raise InvalidEvent("event has no valid 'created' timestamp")
    payload = data.get("data")
    if not isinstance(payload, dict) or not isinstance(payload.get("object"), dict):
        raise InvalidEvent("event has no 'data.object'")
    previous = payload.get("previous_attributes")
    api_version = data.get("api_version")
    return StripeEvent(
        id=event_id,
        type=event_type,
        created=utc_datetime(created),
        livemode=bool(data.get("livemode", False)),
        api_version=api_version if isinstance(api_version, str) else None,
        object=payload["object"],
        previous_attributes=previous if isinstance(previous, dict) else None,
    )

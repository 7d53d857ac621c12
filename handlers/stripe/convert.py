"""Small typed readers for Stripe payload values, shared by every object family.

They turn loosely typed JSON into the values our columns hold (ids, UTC datetimes, integer
minor units, lowercase currency codes) and fail with `ConversionError` naming the field when
a payload cannot be stored faithfully. Differences between API versions live in
`handlers/stripe/shapes.py`, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers.stripe.events import StripeEvent
from storage.types import from_unix


class ConversionError(ValueError):
    """A Stripe object that cannot become one of our rows (missing id, bad currency...)."""


@dataclass(frozen=True, slots=True)
class Source:
    """Where a version of an object comes from: an event, or a read from Stripe's API.

    `at` is the event's `created` (or the time the object was fetched); it is the version
    the version guard compares. `event_type` is None for fetched objects.
    """

    at: datetime
    event_id: str | None
    event_type: str | None = None
    previous_attributes: dict[str, Any] | None = None
    livemode: bool | None = None

    @classmethod
    def from_event(cls, event: StripeEvent) -> Source:
        return cls(
            at=event.created,
            event_id=event.id,
            event_type=event.type,
            previous_attributes=event.previous_attributes,
            livemode=event.livemode,
        )

    def livemode_of(self, obj: dict[str, Any]) -> bool:
        value = obj.get("livemode")
        if isinstance(value, bool):
            return value
        return bool(self.livemode)


def require_id(obj: dict[str, Any]) -> str:
    value = obj.get("id")
    if not isinstance(value, str) or not value or len(value) > 255:
        kind = obj.get("object") or "object"
        raise ConversionError(f"{kind} has no usable 'id'")
    return value


def expandable_id(value: Any) -> str | None:
    """An expandable field is an id, an expanded object with an `id`, or null."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, dict):
        inner = value.get("id")
        return inner if isinstance(inner, str) and inner else None
    return None


def expanded(value: Any) -> dict[str, Any] | None:
    """The expanded object of an expandable field, or None when it is only an id."""
    return value if isinstance(value, dict) else None


def currency(value: Any, *, field: str) -> str:
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise ConversionError(f"{field} is not a three-letter currency code")
    return value.lower()


def optional_currency(value: Any, *, field: str) -> str | None:
    return None if value is None else currency(value, field=field)


def amount(value: Any, *, field: str) -> int:
    """Stripe amounts are integers in minor units; anything else is refused, never rounded."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConversionError(f"{field} is not an integer amount in minor units")
    return value


def optional_amount(value: Any, *, field: str) -> int | None:
    return None if value is None else amount(value, field=field)


def timestamp(value: Any) -> datetime | None:
    """Unix seconds as a UTC datetime; 0 and anything but a number (a bool is not one) are
    None. Read several times per event: plain ints and floats (what JSON gives) are told
    apart by their exact type first."""
    kind = type(value)
    if kind is int or kind is float or (kind is not bool and isinstance(value, int | float)):
        return from_unix(value)
    return None


def text(value: Any, limit: int) -> str | None:
    """Free text, cut to the column's size (Stripe's limits are larger than we need)."""
    if value is None:
        return None
    return str(value)[:limit]


def decimal_text(value: Any) -> str | None:
    """A decimal value as exact text: Stripe sends `percent_off` as a JSON number (25.5)
    and `unit_amount_decimal` as a string; `str` of a float is its shortest exact repr."""
    if value is None or isinstance(value, bool):
        return None
    return str(value)


def flag(value: Any) -> bool:
    return bool(value) if value is not None else False


def integer(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default

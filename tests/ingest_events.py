"""Small Stripe event envelopes for the ingestion tests, shaped like Stripe's own
(`object: "event"`, `data.object`, unix `created`), with unique ids by default."""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

_numbers = itertools.count(1)

# Types no handler will ever claim, so tests can register their own.
TEST_TYPE = "billbot_test.recorded"
FAILING_TYPE = "billbot_test.failing"
UNKNOWN_TYPE = "billbot_test.unknown_type"


def customer(number: int | None = None) -> dict[str, Any]:
    n = next(_numbers) if number is None else number
    return {
        "id": f"cus_test{n:06d}",
        "object": "customer",
        "created": 1_700_000_000,
        "email": f"person{n}@example.com",
        "name": f"Person {n}",
        "currency": "usd",
        "livemode": False,
        "metadata": {},
    }


def event(
    type: str = "customer.created",
    obj: dict[str, Any] | None = None,
    *,
    event_id: str | None = None,
    created: int | None = None,
    livemode: bool = False,
    api_version: str | None = "2026-07-29.dahlia",
) -> dict[str, Any]:
    return {
        "id": event_id or f"evt_test{next(_numbers):08d}",
        "object": "event",
        "api_version": api_version,
        "created": created or int(time.time()),
        "data": {"object": obj if obj is not None else customer()},
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }


def upcoming_invoice_event() -> dict[str, Any]:
    """`invoice.upcoming` carries an invoice without an id."""
    invoice = {
        "object": "invoice",
        "customer": "cus_test000001",
        "amount_due": 1500,
        "currency": "usd",
    }
    return event("invoice.upcoming", invoice)


def body(value: dict[str, Any]) -> bytes:
    return json.dumps(value, indent=2).encode()

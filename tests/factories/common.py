"""API versions, ids, times and the event envelope."""

from __future__ import annotations

import copy
import itertools
import uuid
from typing import Any

OLD = "2024-06-20"
NEW = "2026-07-29.dahlia"
API_VERSIONS = (OLD, NEW)
T0 = 1_767_225_600  # 2026-01-01T00:00:00Z
DAY = 86_400
_serial = itertools.count(1)


def serial() -> int:
    """A number never handed out before in this run (invoice numbers, id prefixes)."""
    return next(_serial)


def new_id(prefix: str) -> str:
    return f"{prefix}_{serial():05d}{uuid.uuid4().hex[:12]}"


def is_basil(api_version: str | None) -> bool:
    return api_version is not None and api_version >= "2025-03-31"


def event(
    type: str,
    obj: dict[str, Any],
    *,
    created: int,
    api_version: str | None,
    previous_attributes: dict[str, Any] | None = None,
    id: str | None = None,
    livemode: bool = False,
) -> dict[str, Any]:
    """A snapshot event envelope as Stripe sends it to a webhook endpoint."""
    data: dict[str, Any] = {"object": copy.deepcopy(obj)}
    if previous_attributes is not None:
        data["previous_attributes"] = previous_attributes
    return {
        "id": id or new_id("evt"),
        "object": "event",
        "account": None,
        "api_version": api_version,
        "context": None,
        "created": created,
        "data": data,
        "livemode": livemode,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": type,
    }

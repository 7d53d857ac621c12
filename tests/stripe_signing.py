"""Sign webhook bodies exactly as Stripe does, for tests that post to our endpoint.

`Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]`, where each `v1` is
HMAC-SHA256 keyed with one endpoint secret (the `whsec_...` string as-is) over
`f"{t}.{raw_body}"`. During a secret roll Stripe sends one `v1` per active secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Sequence
from typing import Any


def signature(body: bytes | str, secret: str, timestamp: int) -> str:
    raw = body.encode() if isinstance(body, str) else body
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()


def signature_header(
    body: bytes | str, secrets: str | Sequence[str], *, timestamp: int | None = None
) -> str:
    """The `Stripe-Signature` value for `body`, one `v1` per secret, in the order given."""
    t = int(time.time()) if timestamp is None else timestamp
    keys = [secrets] if isinstance(secrets, str) else list(secrets)
    if not keys:
        raise ValueError("at least one secret is needed to sign")
    return ",".join([f"t={t}", *(f"v1={signature(body, key, t)}" for key in keys)])


def signed_request(
    payload: dict[str, Any] | bytes | str,
    secrets: str | Sequence[str],
    *,
    timestamp: int | None = None,
) -> tuple[bytes, dict[str, str]]:
    """A body and headers ready to POST; dict payloads are serialised the way Stripe does
    (pretty-printed JSON), so tests never depend on one particular byte layout."""
    if isinstance(payload, dict):
        body = json.dumps(payload, indent=2).encode()
    else:
        body = payload.encode() if isinstance(payload, str) else payload
    headers = {
        "Stripe-Signature": signature_header(body, secrets, timestamp=timestamp),
        "Content-Type": "application/json; charset=utf-8",
    }
    return body, headers

"""Sign webhook bodies exactly as Stripe does, independently of the stripe library.

`Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, f"{t}.{raw body}")>`; the key
is the `whsec_...` string's bytes as they are."""

from __future__ import annotations

import hashlib
import hmac
import time


def stripe_signature(body: bytes | str, secret: str, *, timestamp: int | None = None) -> str:
    return signature_header(body, [secret], timestamp=timestamp)


def signature_header(
    body: bytes | str, secrets: list[str], *, timestamp: int | None = None, extra: str = ""
) -> str:
    """One `v1` entry per secret (what Stripe sends while an endpoint's secret is rolled)."""
    raw = body.encode() if isinstance(body, str) else body
    t = int(time.time()) if timestamp is None else timestamp
    entries = [f"t={t}"]
    for secret in secrets:
        mac = hmac.new(secret.encode(), f"{t}.".encode() + raw, hashlib.sha256).hexdigest()
        entries.append(f"v1={mac}")
    if extra:
        entries.append(extra)
    return ",".join(entries)

"""The value a webhook-feed warning is: what is wrong, since when, and its incident key."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class WebhookWarningKind(StrEnum):
    SILENCE = "webhook_silence"  # no event by webhook for WEBHOOK_SILENCE_HOURS
    SIGNATURE_FAILURES = "webhook_signature_failures"  # a spike of refused signatures


@dataclass(frozen=True, slots=True)
class WebhookWarning:
    kind: WebhookWarningKind
    since: datetime | None  # the last event received / the first refusal of the incident
    incident_key: str  # one warning per incident: the outbox dedupe key
    count: int = 0  # signature failures in the incident
    active_subscriptions: int = 0
    queued: bool = False  # this check queued the message (False: it was queued before)

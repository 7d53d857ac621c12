"""What a handler reports after an upsert: its `Change`, and lines on the customer's timeline.

Timeline keys name each happening once. Things that happen once per object (a subscription
starts, an invoice is paid, a refund is made) are keyed by the object id, so a webhook, its
duplicate and a later backfill all write one line. Things that can repeat (a plan change, a
failed attempt) are keyed by the event id, or by the version time for objects read from the
API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from handlers.stripe.convert import Source
from handlers.stripe.registry import Change
from storage.billing import Upserted
from storage.timeline import record_timeline_entry


def change_for(
    object_type: str,
    result: Upserted[Any],
    source: Source,
    *,
    customer_id: str | None,
    **details: object,
) -> Change:
    if source.previous_attributes is not None:
        details["previous_attributes"] = source.previous_attributes
    if result.previous is not None:
        details["previous"] = result.previous
    if not result.applied:
        details["reason"] = result.reason
    return Change(
        object_type=object_type,
        object_id=result.row.id,
        customer_id=customer_id,
        applied=result.applied,
        details=details,
    )


def once_key(object_id: str, kind: str) -> str:
    return f"{object_id}:{kind}"


def repeat_key(source: Source, object_id: str, kind: str) -> str:
    if source.event_id is not None:
        return f"{source.event_id}:{kind}"
    return f"{object_id}:{kind}:{int(source.at.timestamp())}"


def add_entry(
    session: Session,
    source: Source,
    *,
    customer_id: str | None,
    object_id: str,
    kind: str,
    summary: str,
    key: str,
    occurred_at: datetime | None = None,
) -> None:
    """One timeline line; skipped when the object names no customer to hang it on."""
    if not customer_id:
        return
    record_timeline_entry(
        session=session,
        customer_id=customer_id,
        occurred_at=occurred_at or source.at,
        kind=kind,
        summary=summary,
        source_key=key,
        event_id=source.event_id,
        object_id=object_id,
    )


def day(moment: datetime | None) -> str:
    """A date people read in a timeline line (UTC); Slack views re-render it per reader."""
    return moment.strftime("%Y-%m-%d") if moment is not None else "an unknown date"

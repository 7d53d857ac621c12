"""The explicit event registry: `HANDLERS[event_type] = fn`.

A handler applies one event to the store inside the caller's transaction and returns the
changes it made. Types without a handler are recorded in the inbox as `ignored`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlmodel import Session

from handlers.stripe.events import StripeEvent


@dataclass(frozen=True, slots=True)
class Change:
    """One stored object an event touched.

    `applied` is False when the event was older than what the store holds (its data was
    not written); reactions such as alerts and the MRR ledger look at the store, not at
    the event, to decide what the change means.
    """

    object_type: str  # "customer", "subscription", "invoice", "charge", "refund", "invoice_payment"
    object_id: str
    customer_id: str | None
    applied: bool
    details: dict[str, object] = field(default_factory=dict)


Handler = Callable[[Session, StripeEvent], list[Change]]

HANDLERS: dict[str, Handler] = {}


def handles(*event_types: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for event_type in event_types:
            if event_type in HANDLERS:
                raise RuntimeError(
                    f"two handlers for {event_type}: {HANDLERS[event_type].__name__} and {fn.__name__}"
                )
            HANDLERS[event_type] = fn
        return fn

    return register


def handler_for(event_type: str) -> Handler | None:
    _load_handlers()
    return HANDLERS.get(event_type)


def handled_types() -> frozenset[str]:
    _load_handlers()
    return frozenset(HANDLERS)


_loaded: list[bool] = []


def _load_handlers() -> None:
    # Importing the modules runs their @handles decorators. Done lazily, once (the worker
    # looks a handler up several times per event).
    if _loaded:
        return
    import handlers.stripe.charges  # noqa: F401
    import handlers.stripe.customers  # noqa: F401
    import handlers.stripe.invoices  # noqa: F401
    import handlers.stripe.subscriptions  # noqa: F401

    _loaded.append(True)


@dataclass(frozen=True, slots=True)
class AppliedEvent:
    """What reactions (alerts, the MRR ledger) receive after an event was applied.

    `source` says where the event came from: "webhook" (live), "replay" (billbot replay),
    "backfill" or "reconcile". Only webhook events are live and may post to Slack: the
    others are history. A "reconcile" event is one the webhook missed, found up to 30 days
    later; paging people about it days late would be noise, so the reconciliation's drift
    report is the notice instead (docs/backfill.md).

    `batch_event_ids` are the ids of every event the same transaction applies (the worker's
    batch, this one included), so that a reaction can read what it needs for all of them at
    once; empty when the caller does not say.
    """

    event: StripeEvent
    changes: list[Change]
    source: str
    batch_event_ids: frozenset[str] = frozenset()

    @property
    def is_live(self) -> bool:
        return self.source == "webhook"


# A reaction runs in the same transaction as the event it reacts to.
Reaction = Callable[[Session, AppliedEvent], None]

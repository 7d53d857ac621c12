"""Apply inbox events to the store: the worker's unit of work.

One call to `apply_due_events` claims a batch of due events (oldest `created` first) and
applies all of them in ONE transaction: each event's handler, then every reaction (alerts,
the MRR ledger), then the inbox statuses. Batching is what makes the worker fast; the
transaction is what makes it exact: the status change commits with the data it describes,
so an event is either applied and marked, or neither.

If anything in the batch raises, the whole transaction is rolled back and the same events
are applied again one per transaction, so one bad event is retried on its own (with backoff,
then parked as dead) and never blocks the others. The one-by-one pass re-claims each event
(and skips it if another worker took it meanwhile), so no event is applied twice.

On PostgreSQL claiming a batch and locking the rows it will upsert is one step that one
worker at a time takes (`storage.inbox_claim.claim_turn`), so several workers apply the events
about one object in the order they were claimed, oldest `created` first; and a worker
claims only from lanes (customers, hashed) no other batch holds, so concurrent batches are
about different customers and rarely wait for each other (`storage.inbox`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine
from sqlmodel import Session

from handlers.stripe.events import InvalidEvent, StripeEvent, parse_event
from handlers.stripe.prefetch import batch_reads, upserted_objects
from handlers.stripe.registry import AppliedEvent, Handler, Reaction, handler_for
from storage import billing, inbox, inbox_claim
from storage.db import session_scope
from storage.models.inbox import EventStatus
from storage.timeline import hold_timeline_entries, write_held_timeline_entries
from storage.types import utcnow

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
HandlerLookup = Callable[[str], Handler | None]
# A claimed event, parsed (None: not an event), with its handler (None: not handled).
_Parsed = tuple[inbox_claim.ClaimedEvent, StripeEvent | None, Handler | None]


@dataclass(slots=True)
class BatchResult:
    claimed: int = 0
    applied: int = 0
    ignored: int = 0
    retrying: int = 0
    dead: int = 0

    def add(self, other: BatchResult) -> None:
        self.claimed += other.claimed
        self.applied += other.applied
        self.ignored += other.ignored
        self.retrying += other.retrying
        self.dead += other.dead


@dataclass(frozen=True, slots=True)
class ApplyOptions:
    batch_size: int = 200
    max_attempts: int = 8
    reactions: Sequence[Reaction] = ()
    clock: Clock = utcnow
    lookup: HandlerLookup = handler_for
    worker: int | None = None  # the applying worker's presence token (storage.lanes.WorkerPresence)


class _Outcome:
    """What applying one event inside a transaction came to (before marking)."""

    APPLIED = "applied"
    IGNORED = "ignored"
    INVALID = "invalid"


def apply_due_events(*, engine: Engine, options: ApplyOptions = ApplyOptions()) -> BatchResult:
    """Claim and apply one batch of due events. Returns what happened to them.

    Database errors (the database is down) propagate; the caller backs off and tries again."""
    claimed_ids: list[str] = []
    try:
        with session_scope(engine) as session:
            with inbox_claim.claim_turn(session=session):
                claimed = inbox_claim.claim_due(
                    session=session,
                    now=options.clock(),
                    limit=options.batch_size,
                    worker=options.worker,
                )
                claimed_ids = [event.id for event in claimed]
                parsed = _lock_batch(session, claimed, options)
            result = _apply_locked(session, parsed, options)
        return result
    except Exception:
        if len(claimed_ids) <= 1:
            if claimed_ids:
                return _apply_alone(engine, claimed_ids[0], options)
            raise
        logger.info("stripe.batch.split events=%d", len(claimed_ids))
    result = BatchResult()
    for event_id in claimed_ids:
        result.add(_apply_alone(engine, event_id, options))
    return result


def _apply_together(
    session: Session, claimed: list[inbox_claim.ClaimedEvent], options: ApplyOptions
) -> BatchResult:
    return _apply_locked(session, _lock_batch(session, claimed, options), options)


def _lock_batch(
    session: Session, claimed: list[inbox_claim.ClaimedEvent], options: ApplyOptions
) -> list[_Parsed]:
    """Parse the claimed events and lock every row they will upsert (in the claim turn)."""
    parsed = []
    for row in claimed:
        event = _parse(session, row)
        parsed.append((row, event, options.lookup(event.type) if event is not None else None))
    billing.lock_objects(session=session, objects=upserted_objects(_handled(parsed)))
    return parsed


def _handled(parsed: list[_Parsed]) -> Iterator[dict[str, Any]]:
    """The objects of the parsed events that have a handler."""
    return (event.object for _, event, handler in parsed if handler is not None)


def _apply_locked(session: Session, parsed: list[_Parsed], options: ApplyOptions) -> BatchResult:
    result = BatchResult(claimed=len(parsed))
    applied: list[str] = []
    ignored: list[str] = []
    billing.prefetch_reads(session=session, keys=batch_reads(_handled(parsed)))
    hold_timeline_entries(session=session)
    batch = frozenset(event.id for _, event, _ in parsed if event is not None)
    for row, event, handler in parsed:
        outcome = _apply_one(session, row, event, handler, options, batch)
        if outcome == _Outcome.APPLIED:
            applied.append(row.id)
        elif outcome == _Outcome.IGNORED:
            ignored.append(row.id)
        else:
            result.dead += 1
    write_held_timeline_entries(session=session)
    now = options.clock()
    inbox.mark_applied(session=session, event_ids=applied, now=now)
    inbox.mark_ignored(
        session=session, event_ids=ignored, reason="no handler for this event type", now=now
    )
    result.applied, result.ignored = len(applied), len(ignored)
    if parsed:
        logger.debug("stripe.batch.applied applied=%d ignored=%d", len(applied), len(ignored))
    return result


def _parse(session: Session, row: inbox_claim.ClaimedEvent) -> StripeEvent | None:
    """The stored event, or None (and the event parked as dead) when it is not one."""
    try:
        return parse_event(row.payload)
    except InvalidEvent as exc:
        inbox.mark_dead(
            session=session, event_id=row.id, error=f"stored payload is not an event: {exc}"
        )
        logger.error("stripe.event.dead event_id=%s reason=invalid_payload", row.id)
        return None


def _apply_one(
    session: Session,
    row: inbox_claim.ClaimedEvent,
    event: StripeEvent | None,
    handler: Handler | None,
    options: ApplyOptions,
    batch: frozenset[str],
) -> str:
    """Run the handler and the reactions for one event. Raises whatever they raise.

    Nothing is flushed here on purpose: the batch's writes go to the database together (at
    the next query, or at commit). A constraint error is still blamed on the right event,
    because a failing batch is applied again one event per transaction."""
    if event is None:
        return _Outcome.INVALID
    if handler is None:
        return _Outcome.IGNORED
    changes = handler(session, event)
    applied = AppliedEvent(event=event, changes=changes, source=row.source, batch_event_ids=batch)
    for reaction in options.reactions:
        reaction(session, applied)
    logger.debug("stripe.event.applied event_id=%s type=%s", row.id, row.type)
    return _Outcome.APPLIED


def _apply_alone(engine: Engine, event_id: str, options: ApplyOptions) -> BatchResult:
    """Apply one event in its own transaction; on failure record it in another.

    The failure is recorded only if the event is still ours to fail (still pending and not
    locked by another worker that has taken it since our rollback)."""
    try:
        with session_scope(engine) as session:
            with inbox_claim.claim_turn(session=session):
                claimed = inbox_claim.claim_due(
                    session=session, now=options.clock(), limit=1, event_id=event_id
                )
                parsed = _lock_batch(session, claimed, options)
            return _apply_locked(session, parsed, options)
    except Exception as exc:
        error, error_type = f"{type(exc).__name__}: {exc}", type(exc).__name__
        logger.debug("stripe.event.failed event_id=%s", event_id, exc_info=True)
    with session_scope(engine) as session:
        now = options.clock()
        if not inbox_claim.claim_due(session=session, now=now, limit=1, event_id=event_id):
            return BatchResult()
        status = inbox.mark_failed(
            session=session,
            event_id=event_id,
            error=error,
            now=now,
            max_attempts=options.max_attempts,
        )
    if status == EventStatus.DEAD:
        logger.error("stripe.event.dead event_id=%s error=%s", event_id, error_type)
        return BatchResult(claimed=1, dead=1)
    logger.warning("stripe.event.retrying event_id=%s error=%s", event_id, error_type)
    return BatchResult(claimed=1, retrying=1)

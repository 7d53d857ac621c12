"""Claiming the inbox's due events for the worker (`stripe_event`), the worker's side of
storage/inbox.py.

Who guarantees what:
- `claim_due` runs inside the worker's applying transaction. On PostgreSQL it locks the rows
  with `FOR UPDATE SKIP LOCKED`, so concurrent workers take disjoint batches and a row is
  re-checked (`status = 'pending'`) after its lock is granted; on SQLite the transaction began
  with `BEGIN IMMEDIATE` (storage/db.py), so there is only ever one claimer at a time.
- `claim_turn` makes, on PostgreSQL, claiming a batch and locking its objects one step that
  one worker at a time takes, so batches queue for shared objects in the order they were
  claimed (oldest events first); see its docstring for why it cannot deadlock.
- Lanes (PostgreSQL): every row is stored with its owner's lane, and a worker claims only
  from lanes no other transaction holds, holding them until commit, so concurrent batches
  are about different customers and do not queue for each other's locks (storage/lanes.py).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, literal_column, or_, select, text
from sqlmodel import Session

from storage.lanes import hold_lanes, lanes_to_claim
from storage.models.inbox import StripeEvent as InboxEvent

TABLE = InboxEvent.__table__


@dataclass(frozen=True, slots=True)
class ClaimedEvent:
    id: str
    type: str
    source: str
    payload: str
    attempts: int


# The literal (not a bound parameter) lets both databases use the partial index on pending rows.
PENDING = TABLE.c.status == literal_column("'pending'")


def due_clause(now: datetime):
    """Pending events whose retry time (if any) has come."""
    return and_(PENDING, or_(TABLE.c.next_attempt_at.is_(None), TABLE.c.next_attempt_at <= now))


def claim_due(
    *,
    session: Session,
    now: datetime,
    limit: int,
    event_id: str | None = None,
    worker: int | None = None,
) -> list[ClaimedEvent]:
    """Pending events whose retry time has come, oldest `created` first, locked for this
    transaction. With `event_id`, only that event (if it is still due).

    On PostgreSQL, without `event_id`, only from lanes no other transaction holds, and only
    from some of those (`_claim_from_free_lanes`): call it in the claim turn (`claim_turn`).
    `worker` is the claimer's own `WorkerPresence.token`, if it announced itself."""
    due = due_clause(now)
    if event_id is not None:
        due = and_(due, TABLE.c.id == event_id)
    elif session.get_bind().dialect.name == "postgresql":
        return _claim_from_free_lanes(session, due, now, limit, worker)
    statement = _claim(due, limit)
    return [ClaimedEvent(*row) for row in session.execute(statement)]


def _claim(due, limit: int, *columns):
    return (
        select(
            TABLE.c.id, TABLE.c.type, TABLE.c.source, TABLE.c.payload, TABLE.c.attempts, *columns
        )
        .where(due)
        .order_by(TABLE.c.created)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )


def _claim_from_free_lanes(
    session: Session, due, now: datetime, limit: int, worker: int | None = None
) -> list[ClaimedEvent]:
    """PostgreSQL: the oldest due events of the lanes `storage.lanes.lanes_to_claim` picks,
    and the lanes they are in held until commit."""
    with _walking_pending_in_order(session):
        lanes = lanes_to_claim(session, now=now, limit=limit, worker=worker)
        rows = []
        if lanes:
            statement = _claim(and_(due, TABLE.c.lane.in_(lanes)), limit, TABLE.c.lane)
            rows = session.execute(statement).all()
    hold_lanes(session, {row[-1] for row in rows})
    return [ClaimedEvent(*row[:-1]) for row in rows]


@contextmanager
def _walking_pending_in_order(session: Session) -> Iterator[None]:
    """The statements inside walk the pending index in `created` order and stop at their
    limit. The planner's alternative, a bitmap scan of every pending row and then a sort,
    wins only when it believes few rows are pending: on a fresh inbox (no statistics yet), or
    when a burst lands in one whose statistics say pending rows are rare (usual, since most
    are applied). Then every claim sorted the whole backlog with its payloads, on disk: 55 ms
    for 20,000 pending events against 1.5 ms for the walk, inside the claim turn, so every
    worker waited for it, and a backlog of n events took time in n².

    The setting is reset only when the block ends normally: after an error the transaction
    is aborted (a statement would fail, hiding the error) and its rollback drops the setting."""
    session.execute(_WALK_PENDING_IN_ORDER)
    yield
    session.execute(_PLAN_AS_USUAL)


_WALK_PENDING_IN_ORDER = text("SET LOCAL enable_bitmapscan = off")
_PLAN_AS_USUAL = text("SET LOCAL enable_bitmapscan = on")


CLAIM_KEY = int.from_bytes(hashlib.sha256(b"billbot.inbox:claim").digest()[:8], "big", signed=True)
_TAKE_TURN = text("SELECT pg_advisory_lock(:key)")
_END_TURN = text("SELECT pg_advisory_unlock(:key)")


@contextmanager
def claim_turn(*, session: Session) -> Iterator[None]:
    """PostgreSQL: one worker at a time claims a batch and takes its objects' locks.

    Without it two workers claiming at once could take their objects' locks in either order,
    and the batch with the newer events would then apply them first for an object both
    batches touch (the version guard kept the row right, but the ledger and the alerts saw
    the newer event before the older one). Inside the turn the claimer takes every object
    lock its batch needs (`storage.billing.lock_objects`), waiting for batches claimed before
    it; only then does the next worker claim. So batches reach each shared object in claim
    order, which is `created` order.

    The turn is a session-level advisory lock on one fixed key, released when the block
    ends, not at commit (`pg_advisory_xact_lock` would hold it through the whole batch and
    serialise the workers). It cannot deadlock: a worker asks for it as the first statement
    of its transaction, holding no other lock, so nobody waits for a lock held by a worker
    waiting for the turn; and the holder waits only for batches that already had their turn,
    which never ask for it again before they commit. If the block raises, the connection is
    discarded (invalidated), which frees the lock with the server session, so an error can
    never leave the turn taken. SQLite needs none: `BEGIN IMMEDIATE` admits one writer."""
    if session.get_bind().dialect.name != "postgresql":
        yield
        return
    connection = session.connection()
    try:
        connection.execute(_TAKE_TURN, {"key": CLAIM_KEY})
        yield
        connection.execute(_END_TURN, {"key": CLAIM_KEY})
    except BaseException:
        connection.invalidate()
        raise

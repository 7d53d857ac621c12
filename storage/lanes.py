"""Inbox lanes (PostgreSQL): which lanes of the inbox a worker may claim from, and the
workers' presence that decides how many it takes.

Every inbox row is stored with its owner's lane (`lane_of`: a customer's events share one),
and a worker claims only from lanes no other transaction holds, holding those it claimed from
until commit (`lanes_to_claim`, `hold_lanes`, called by `storage.inbox_claim.claim_due` in the claim
turn), so concurrent batches are about different customers and do not queue for each other's
locks. A worker leaves lanes for others only when others are running (`WorkerPresence`).
docs/ingestion.md, "Lanes", tells why and what was measured.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable, Collection, Sequence
from datetime import datetime
from functools import lru_cache

from sqlalchemy import Connection, Engine, bindparam, text
from sqlmodel import Session

from storage.models.inbox import StripeEvent as InboxEvent

logger = logging.getLogger(__name__)

LANES = 64


@lru_cache(maxsize=4096)
def lane_of(owner_id: str | None) -> int:
    """The lane of an event about this owner (a customer, or the object itself): a stable
    hash, the first byte of the owner's MD5 modulo `LANES`, so every process, and the
    migration that gave stored events theirs, computes the same lane. Remembered: an
    owner's events come together (a checkout is several), and the webhook asks per event."""
    if not owner_id:
        return 0
    return hashlib.md5(owner_id.encode(), usedforsecurity=False).digest()[0] % LANES


# Lane locks are transaction-level advisory locks on (LANE_NAMESPACE, lane); pg_locks shows
# such a two-key lock with classid = the first key, objid = the second and objsubid = 2.
LANE_NAMESPACE = int.from_bytes(hashlib.sha256(b"billbot.inbox:lane").digest()[:4]) >> 1
_FREE_LANES = text(
    """
    WITH busy AS (
        SELECT DISTINCT objid::int AS lane FROM pg_locks
        WHERE locktype = 'advisory' AND classid = :namespace AND objsubid = 2
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND pid <> pg_backend_pid()
    ), others AS (
        SELECT count(*) AS workers FROM pg_locks
        WHERE locktype = 'advisory' AND classid = :workers AND objsubid = 2 AND granted
          AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND objid::bigint <> :me
    )
    SELECT lane, count(*), (SELECT workers FROM others) FROM (
        SELECT lane, created FROM stripe_event
        WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= :now)
          AND lane NOT IN (SELECT lane FROM busy)
        ORDER BY created LIMIT :probe
    ) AS oldest
    GROUP BY lane ORDER BY min(created)
    """
).bindparams(bindparam("now", type_=InboxEvent.__table__.c.next_attempt_at.type))
_TAKE_LANES = text(
    "SELECT pg_advisory_xact_lock(:namespace, lane)"
    " FROM unnest(CAST(:lanes AS int[])) AS lane ORDER BY lane"
)


def lanes_to_claim(
    session: Session, *, now: datetime, limit: int, worker: int | None = None
) -> list[int]:
    """PostgreSQL: the lanes to claim the oldest due events of (`limit` of them at most):
    some of those no other transaction holds. `worker` is the claimer's own
    `WorkerPresence.token`, if it announced itself; hold what the batch claimed from with
    `hold_lanes`.

    Events of one owner share a lane (`lane_of`), so batches from disjoint lanes rarely
    share an object and do not queue for each other's locks, as consecutive oldest-first
    batches did. The lanes are those of the oldest due events outside the lanes others
    hold, oldest first, until they have a batch's worth of the oldest due events, but at
    most half of the free lanes that have some (at least one), so the next worker finds
    work too; when the free lanes hold less than two batches' worth, all of them (splitting
    would leave two small batches). A worker that sees no other worker announced
    (`WorkerPresence`) takes every free lane: alone, it claims the oldest due events
    overall, exactly as without lanes. Only the lanes the batch claimed from are then held.
    (The free lanes are seen among the oldest `2 * limit` free due events.) In the claim
    turn nobody else takes lanes, so what was free is still free when taken. Each lane is
    in one batch at a time and a batch claims the oldest due events of its lanes, so the
    events of a lane are claimed in `created` order. An object whose events are in
    several lanes (events stored before lanes existed, in lane 0; a refund stored before
    its charge) is applied in claim order by `claim_turn` and its name lock, like any
    object two batches share."""
    probe = 2 * limit
    free = {
        "namespace": LANE_NAMESPACE,
        "workers": WORKER_NAMESPACE,
        "me": -1 if worker is None else worker,
        "now": now,
        "probe": probe,
    }
    rows = session.execute(_FREE_LANES, free).all()
    with_work = [(lane, count) for lane, count, _ in rows]
    others = rows[0][2] if rows else 0
    if others:
        return choose_lanes(with_work, limit=limit, probe=probe)
    return [lane for lane, _ in with_work]  # alone: every free lane, as without lanes


def hold_lanes(session: Session, lanes: Collection[int]) -> None:
    """Hold these lanes until commit (in lane order, one statement)."""
    if lanes:
        session.execute(_TAKE_LANES, {"namespace": LANE_NAMESPACE, "lanes": sorted(lanes)})


# A running worker's presence: a session-level advisory lock on (WORKER_NAMESPACE, token).
WORKER_NAMESPACE = int.from_bytes(hashlib.sha256(b"billbot.inbox:worker").digest()[:4]) >> 1
_ANNOUNCE = text("SELECT pg_advisory_lock(:namespace, :token)")
_WITHDRAW = text("SELECT pg_advisory_unlock(:namespace, :token)")
PRESENCE_CHECK_SECONDS = 30.0


class WorkerPresence:
    """PostgreSQL: a worker says it is running by holding a session-level advisory lock on
    (`WORKER_NAMESPACE`, `token`) on a connection of its own, for as long as it runs (the
    server drops the lock with the connection, so a worker that dies is gone at once).

    Claimers count the others' (`lanes_to_claim`): a worker alone takes every lane,
    a worker with company leaves some for the others. Best effort: when the database is
    unreachable nothing is announced and the worker behaves as if alone until it is, which
    only costs the other workers some parallelism, never correctness. The connection is
    checked every `PRESENCE_CHECK_SECONDS` and the lock taken again when it was lost."""

    def __init__(self, engine: Engine, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.engine = engine
        self.token = secrets.randbelow(2**31)
        self._clock = clock
        self._connection: Connection | None = None
        self._checked = 0.0

    def announce(self) -> None:
        """Hold the lock now if it is not held (or not known to be held lately)."""
        if self.engine.dialect.name != "postgresql":
            return
        now = self._clock()
        if self._connection is not None and now - self._checked < PRESENCE_CHECK_SECONDS:
            return
        self._checked = now
        try:
            if self._connection is not None:
                self._connection.exec_driver_sql("SELECT 1")
                self._connection.commit()
                return
        except Exception:
            self.withdraw()
        try:
            connection = self.engine.connect()
            connection.execute(_ANNOUNCE, {"namespace": WORKER_NAMESPACE, "token": self.token})
            connection.commit()
        except Exception:
            logger.debug("inbox.worker_presence_failed", exc_info=True)
            return
        self._connection = connection

    def withdraw(self) -> None:
        """Release the lock, then drop its connection. The release is explicit because the
        server frees a closed connection's locks only when its backend has exited, a moment
        later: a claim in that moment would still count this worker."""
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.execute(_WITHDRAW, {"namespace": WORKER_NAMESPACE, "token": self.token})
            except Exception:
                logger.debug("inbox.worker_presence_release_failed", exc_info=True)
            try:
                connection.invalidate()  # never back to the pool with the lock held
                connection.close()
            except Exception:
                logger.debug("inbox.worker_presence_close_failed", exc_info=True)


def choose_lanes(with_work: Sequence[tuple[int, int]], *, limit: int, probe: int) -> list[int]:
    """From (lane, due events among the probed ones), oldest lane first: see above."""
    if sum(count for _, count in with_work) < probe:
        return [lane for lane, _ in with_work]
    lanes, events = [], 0
    for lane, count in with_work[: max(1, len(with_work) // 2)]:
        lanes.append(lane)
        events += count
        if events >= limit:
            break
    return lanes

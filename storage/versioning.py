"""When may incoming Stripe data replace what the store holds?

Every stored object remembers the version it holds: `version_at` (the `created` time of
the event that last wrote it, or the time it was read from Stripe's API) and
`version_event_id`. Stripe delivers events late, twice and out of order, and `created`
has one-second resolution, so the rule is:

1. Newer wins: incoming `version_at` later than the stored one replaces it.
2. Older loses: incoming `version_at` earlier than the stored one is ignored.
3. A tie (same second) is decided by how far along its lifecycle each version is
   (`STATE_RANK`): the more advanced state wins, so a state that cannot be left
   (a canceled subscription, a paid or void invoice, a deleted customer) always wins a tie,
   and an update and a deletion in the same second always end deleted. Within the same
   rank, a higher attempt count / refunded amount wins; if still equal, the later
   delivery wins (both describe the same second; neither is known to be newer).
4. The same event applied again (same event id) changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Higher rank = further along; states of the highest rank for an object cannot be left.
STATE_RANK: dict[str, dict[str, int]] = {
    "subscription": {
        "incomplete": 0,
        "trialing": 1,
        "active": 2,
        "past_due": 2,
        "unpaid": 2,
        "paused": 2,
        "incomplete_expired": 9,
        "canceled": 9,
    },
    "invoice": {"draft": 0, "open": 1, "uncollectible": 2, "paid": 9, "void": 9, "deleted": 9},
    "charge": {"pending": 0, "failed": 1, "succeeded": 1},
    "refund": {"pending": 0, "requires_action": 0, "succeeded": 1, "failed": 1, "canceled": 1},
    "invoice_payment": {"open": 0, "canceled": 1, "paid": 1},
    "customer": {"active": 0, "deleted": 9},
}


@dataclass(frozen=True, slots=True)
class Version:
    at: datetime
    event_id: str | None
    state: str | None = None
    progress: int = 0  # attempt count, amount refunded: grows within one state


def should_replace(kind: str, stored: Version | None, incoming: Version) -> bool:
    if stored is None:
        return True
    if incoming.event_id is not None and incoming.event_id == stored.event_id:
        return False
    if incoming.at != stored.at:
        return incoming.at > stored.at
    ranks = STATE_RANK.get(kind, {})
    stored_rank = ranks.get(stored.state or "", 0)
    incoming_rank = ranks.get(incoming.state or "", 0)
    if incoming_rank != stored_rank:
        return incoming_rank > stored_rank
    return incoming.progress >= stored.progress

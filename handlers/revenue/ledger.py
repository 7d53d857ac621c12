"""The MRR ledger reaction: after each applied event, record how each touched customer's
MRR moved, at the event's time.

The ledger never reads the event's payload. It recomputes the customer's MRR from the store
(which the handlers already updated, guarded against older data) and compares it with what
it recorded last (`CustomerMrr`); the difference becomes ledger lines. So an event replayed,
retried or delivered late changes nothing unless the store changed, and the same function
rebuilds the ledger from the store alone (`record_customer_mrr`, with no event).

Classification is per customer (Stripe counts subscribers, not subscriptions): a customer
whose MRR goes from nothing to something is `new` (`reactivation` if they paid before); to
nothing is `churn`; otherwise `expansion` or `contraction`. MRR that leaves because a
subscription paused is a `paused` line and comes back as `resumed`; neither is a movement.

Nothing here flushes: the recorded MRR is read and locked once per transaction
(storage/ledger_memory.py), the store's MRR comes from the rows the batch holds
(storage/store_mrr.py), and the lines and states are written with the unit of work.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from operator import itemgetter
from typing import Any, NamedTuple

from sqlmodel import Session

from bot.settings import Settings
from handlers.stripe.registry import AppliedEvent, Change, Reaction
from storage import held_rows
from storage.ledger_memory import has_written, ledger_memory, locked_facts
from storage.models.billing import Subscription
from storage.models.ledger import CustomerMrr, MovementKind, MrrMovement, to_ledger_units
from storage.mrr import DEFAULT_POLICY, MrrPolicy
from storage.revenue import StoreMrr, customer_mrr_from_store, ledger_customer_ids
from storage.rows import add_new, assign, new_row
from storage.types import utcnow

logger = logging.getLogger(__name__)


# Named tuples rather than frozen dataclasses: several are made and compared per subscription
# change, and a frozen dataclass costs a few times more to make and to compare.
class Recorded(NamedTuple):
    """A customer's MRR state in one currency, in ledger units."""

    mrr: int = 0
    paused: int = 0
    paused_out: int = 0


NOTHING_RECORDED = Recorded()


class PlannedLine(NamedTuple):
    currency: str
    kind: MovementKind
    amount: int
    mrr_after: int


def policy_from_settings(settings: Settings) -> MrrPolicy:
    return MrrPolicy(
        churn_at=settings.revenue_churn_at, discount_durations=frozenset(settings.revenue_discounts)
    )


def mrr_ledger_reaction(settings: Settings) -> Reaction:
    """The reaction the worker runs after each event, with the account's MRR policy bound."""
    policy = policy_from_settings(settings)

    def record_mrr(session: Session, applied: AppliedEvent) -> None:
        record_mrr_movements(session, applied, policy=policy)

    return record_mrr


def record_mrr_movements(
    session: Session, applied: AppliedEvent, *, policy: MrrPolicy = DEFAULT_POLICY
) -> None:
    """Record the MRR movements of every customer the event's applied changes touched."""
    written = 0
    for customer_id in _touched_customers(session, applied.changes):
        lines = record_customer_mrr(
            session,
            customer_id=customer_id,
            at=applied.event.created,
            event_id=applied.event.id,
            policy=policy,
            batch_event_ids=applied.batch_event_ids,
        )
        written += len(lines)
    if written:
        logger.info(
            "revenue.ledger.recorded", extra={"event_id": applied.event.id, "lines": written}
        )


def record_customer_mrr(
    session: Session,
    *,
    customer_id: str,
    at: datetime,
    event_id: str,
    policy: MrrPolicy = DEFAULT_POLICY,
    mrr: Mapping[str, StoreMrr] | None = None,
    batch_event_ids: frozenset[str] = frozenset(),
) -> list[MrrMovement]:
    """Bring one customer's ledger in line with the store, dating any change `at`.

    `mrr` replaces the store's figures when rebuilding history: a backfill passes the MRR
    the customer had at `at` (handlers/sync/history.py). `batch_event_ids` are the events
    the transaction applies, whose facts the ledger may then read together
    (storage/ledger_memory.py). Returns the lines written (none when nothing changed, or
    when `event_id` already wrote lines for this customer)."""
    memory = ledger_memory(session)
    facts = locked_facts(
        session, memory, customer_id=customer_id, event_id=event_id, batch_event_ids=batch_event_ids
    )
    if has_written(memory, customer_id=customer_id, event_id=event_id, facts=facts):
        return []
    rows = memory.recorded[customer_id]
    before = {
        currency: Recorded(row.mrr, row.paused, row.paused_out) for currency, row in rows.items()
    }
    if mrr is None:
        mrr = customer_mrr_from_store(
            session,
            customer_id=customer_id,
            policy=policy,
            stored_ids=facts.subscription_ids,
            stored_rows=memory.stored,
        )
    now = {
        currency: (to_ledger_units(value.mrr), to_ledger_units(value.paused))
        for currency, value in mrr.items()
    }
    ever_paid = any(row.first_paid_at is not None for row in rows.values())
    planned, after = plan_movements(before, now, ever_paid=ever_paid)
    lines = [
        new_row(
            MrrMovement,
            {
                "customer_id": customer_id,
                "currency": line.currency,
                "kind": line.kind,
                "amount": line.amount,
                "mrr_after": line.mrr_after,
                "occurred_at": at,
                "event_id": event_id,
            },
        )
        for line in planned
    ]
    for line in lines:
        add_new(session, line)
    _save_states(session, customer_id=customer_id, rows=rows, after=after, at=at, event_id=event_id)
    if lines:
        memory.written.add((customer_id, event_id))
    return lines  # written with the unit of work's next flush


def record_all_customers_mrr(
    session: Session, *, at: datetime, event_id: str, policy: MrrPolicy = DEFAULT_POLICY
) -> int:
    """Backfill or reconcile: bring every customer's ledger in line with the store. Returns
    the number of lines written; run it again with the same `event_id` and it writes none."""
    written = 0
    for customer_id in ledger_customer_ids(session):
        written += len(
            record_customer_mrr(
                session, customer_id=customer_id, at=at, event_id=event_id, policy=policy
            )
        )
    logger.info("revenue.ledger.backfilled", extra={"event_id": event_id, "lines": written})
    return written


def plan_movements(
    before: Mapping[str, Recorded], now: Mapping[str, tuple[int, int]], *, ever_paid: bool
) -> tuple[list[PlannedLine], dict[str, Recorded]]:
    """Pure: the ledger lines that take a customer from `before` to `now` ((mrr, paused) per
    currency, ledger units), and the states to remember afterwards."""
    currencies = sorted(set(before) | set(now))
    after: dict[str, Recorded] = {}
    pause_parts: dict[str, int] = {}
    for currency in currencies:
        old = before.get(currency, NOTHING_RECORDED)
        mrr, paused = now.get(currency, (0, 0))
        part = _pause_part(old, mrr - old.mrr, paused - old.paused)
        pause_parts[currency] = part
        after[currency] = Recorded(mrr, paused, max(min(old.paused_out - part, paused), 0))
    was_subscriber = any(state.mrr > 0 or state.paused_out > 0 for state in before.values())
    is_subscriber = any(state.mrr > 0 or state.paused_out > 0 for state in after.values())
    lines: list[PlannedLine] = []
    for currency in currencies:
        running = before.get(currency, NOTHING_RECORDED).mrr
        part = pause_parts[currency]
        if part:
            running += part
            kind = MovementKind.PAUSED if part < 0 else MovementKind.RESUMED
            lines.append(PlannedLine(currency, kind, part, running))
        rest = after[currency].mrr - running
        if rest:
            kind = _movement_kind(
                rest,
                was_subscriber=was_subscriber,
                is_subscriber=is_subscriber,
                ever_paid=ever_paid,
            )
            lines.append(PlannedLine(currency, kind, rest, after[currency].mrr))
    return lines, after


def _pause_part(old: Recorded, mrr_delta: int, paused_delta: int) -> int:
    """The part of an MRR change explained by a subscription pausing (< 0) or resuming (> 0).
    Only MRR that left through a pause can come back as a resumption."""
    if paused_delta > 0 and mrr_delta < 0:
        return -min(paused_delta, -mrr_delta)
    if paused_delta < 0 and mrr_delta > 0:
        return min(-paused_delta, mrr_delta, old.paused_out)
    return 0


def _movement_kind(
    amount: int, *, was_subscriber: bool, is_subscriber: bool, ever_paid: bool
) -> MovementKind:
    if amount > 0:
        if was_subscriber:
            return MovementKind.EXPANSION
        return MovementKind.REACTIVATION if ever_paid else MovementKind.NEW
    return MovementKind.CONTRACTION if is_subscriber else MovementKind.CHURN


def _save_states(
    session: Session,
    *,
    customer_id: str,
    rows: dict[str, CustomerMrr],
    after: dict[str, Recorded],
    at: datetime,
    event_id: str,
) -> None:
    """Update the customer's rows (`rows` is the transaction's memory of them, so a new row
    joins it). A new row is built with its values: it has no earlier ones to keep track of."""
    for currency, state in after.items():
        row = rows.get(currency)
        if row is None:
            if state != NOTHING_RECORDED:
                values = _state_values(0, None, state, at=at, event_id=event_id)  # the defaults
                row = new_row(
                    CustomerMrr, {"customer_id": customer_id, "currency": currency, **values}
                )
                add_new(session, row)
                rows[currency] = row
        elif Recorded(row.mrr, row.paused, row.paused_out) != state:
            values = _state_values(row.mrr, row.first_paid_at, state, at=at, event_id=event_id)
            assign(row, values)


def _state_values(
    mrr: int, first_paid_at: datetime | None, state: Recorded, *, at: datetime, event_id: str
) -> dict[str, Any]:
    """A row's values for `state`, given its MRR and first payment so far."""
    values: dict[str, Any] = {
        "mrr": state.mrr,
        "paused": state.paused,
        "paused_out": state.paused_out,
    }
    if mrr != state.mrr:
        values["changed_at"] = at
    if state.mrr > 0 and first_paid_at is None:
        values["first_paid_at"] = at
    return {**values, "event_id": event_id, "updated_at": utcnow()}


# What storage.mrr reads of a subscription and of its items: nothing else can move MRR.
MRR_SUBSCRIPTION_FIELDS = (
    "customer_id", "status", "currency", "discounts", "cancel_at_period_end", "cancel_at",
)  # fmt: skip
MRR_ITEM_FIELDS = (
    "id", "unit_amount", "unit_amount_decimal", "billing_scheme", "tiers_mode", "tiers",
    "interval", "interval_count", "usage_type", "quantity",
)  # fmt: skip


def _could_move_mrr(session: Session, change: Change) -> bool:
    """False only when the change says exactly what the subscription and its items were and
    are, and nothing MRR is computed from differs (a new card, a renewed period): then the
    customer's MRR is what the ledger recorded last, and reading it again would change
    nothing."""
    previous = change.details.get("previous")
    before, after = change.details.get("previous_items"), change.details.get("items")
    if previous is None or not isinstance(before, list) or not isinstance(after, list):
        return True
    row = held_rows.get_row(session, Subscription, change.object_id)  # no flush when held
    if row is None or _inputs(previous, MRR_SUBSCRIPTION_FIELDS) != _inputs(
        row, MRR_SUBSCRIPTION_FIELDS
    ):
        return True
    return _item_inputs(before) != _item_inputs(after)


def _item_inputs(items: list) -> list[tuple]:
    return sorted((_inputs(item, MRR_ITEM_FIELDS) for item in items), key=itemgetter(0))


def _inputs(obj: Any, names: tuple[str, ...]) -> tuple:
    """These attributes of a row or a snapshot, read from its instance dict in one step
    (this runs for every subscription change; the ORM's attribute reads cost several times
    more), or through the attributes when one is not loaded there."""
    try:
        return _GETTERS[names](vars(obj))
    except (KeyError, TypeError):
        return tuple(getattr(obj, name) for name in names)


_GETTERS = {names: itemgetter(*names) for names in (MRR_SUBSCRIPTION_FIELDS, MRR_ITEM_FIELDS)}


def _touched_customers(session: Session, changes: list[Change]) -> list[str]:
    """Customers whose subscriptions the event changed. MRR is read from subscriptions and
    their items alone, so a change to any other object (a customer, an invoice, a charge)
    cannot move it, and skipping those is what keeps the ledger cheap on the worker's path."""
    customers: set[str] = set()
    for change in changes:
        if not change.applied or change.object_type != "subscription":
            continue
        if not _could_move_mrr(session, change):
            continue
        if change.customer_id:
            customers.add(change.customer_id)
        elif change.object_type == "subscription":
            subscription = held_rows.get_row(session, Subscription, change.object_id)
            if subscription is not None:
                customers.add(subscription.customer_id)
    return sorted(customers)

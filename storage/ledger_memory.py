"""The MRR ledger's memory of one transaction: each customer's recorded MRR, read and locked
once, and the (customer, event) pairs it has just written lines for.

The ledger used to flush the unit of work and query `customer_mrr ... FOR UPDATE` and
`mrr_movement` again for every subscription change. Within one transaction neither can change
except through the ledger itself: it alone writes them, through the very objects kept here,
and the `customer_mrr` rows it read stay locked until commit. So:

- a customer's rows are read and locked the first time the transaction needs the customer;
  the first time of all, together with the customers of every subscription the store holds
  (the batch's, read and locked up front by the worker, storage/held_rows.py), with one
  query in customer order. A customer met later (a new subscription) is read on its own,
  and only if `ledger_facts` says there is a row: where there is none there is nothing to
  lock, as before (another worker inserting the same row makes one of the two commits fail,
  and that batch is applied again).
- the lines an event has written for a customer in this transaction are remembered here
  (they may not be flushed yet); earlier ones are found by `ledger_facts`.
- what `ledger_facts` says (the customer's subscription ids in the database, whether the
  event already wrote lines for the customer) is read for the whole batch at once, right
  after that first lock, for the customers the batch's subscription events name and the
  events the batch applies (`AppliedEvent.batch_event_ids`): two queries per chunk instead
  of one per change. It stays exact: the rows locked, nobody else changes what moves these
  customers' MRR before commit (another worker's ledger would wait for the lock first), and
  what this transaction changes since is what the store holds (`held_rows.found_rows` knows
  the customer's subscriptions the unit of work has created or changed). A customer or an
  event outside the batch is asked about on its own, after its lock, as before. The
  customers' other subscriptions (those the batch neither locked nor created) are read
  then too, for the customers whose rows were locked: for them the same holds. Should the
  session write a subscription behind the store's back (by hand, not through
  `storage.billing`'s upserts), the flush that writes it drops what was read, and the
  rest of the transaction asks change by change again.

The memory lives in `session.info` and belongs to the session's current transaction and
savepoint: when either changes (commit, rollback, a savepoint begun, released or rolled
back) it is dropped and rows are read again, so a rolled-back savepoint cannot leave behind
states or lines that were never stored. Everything written before the change was flushed by
it (SQLAlchemy flushes before a savepoint and at its release), so the database then answers
for those lines.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from storage import held_rows
from storage.held_rows import held_items
from storage.models.billing import Subscription
from storage.models.ledger import CustomerMrr
from storage.revenue import LedgerFacts, ledger_facts, ledger_facts_of_many, lock_customers_mrr
from storage.store_mrr import flushing_unheld_changes, read_subscriptions

_KEY = "storage.ledger_memory"
_WATCHING = "storage.ledger_memory.watching"


@dataclass(eq=False, slots=True)
class LedgerMemory:
    transaction: Any
    savepoint: Any
    # customer id -> currency -> row, locked; a customer present with {} has no row yet
    recorded: dict[str, dict[str, CustomerMrr]] = field(default_factory=dict)
    written: set[tuple[str, str]] = field(default_factory=set)  # (customer, event) with lines
    # read for the batch right after the first lock (`locked_facts`):
    subscription_ids: dict[str, list[str]] = field(default_factory=dict)  # in the database
    lines: set[tuple[str, str]] = field(default_factory=set)  # (customer, event) stored before
    events: frozenset[str] = frozenset()  # the events `lines` answers for
    # id -> (row, items) of those customers' subscriptions the store does not hold, for the
    # customers whose rows are locked (storage/store_mrr.py `stored_rows`)
    stored: dict[str, tuple[Any, list[Any]]] = field(default_factory=dict)


def ledger_memory(session: Session) -> LedgerMemory:
    """This transaction's memory, new when the transaction or savepoint changed."""
    transaction = session.get_transaction()
    if transaction is None:
        session.connection()  # begin the transaction the memory will belong to
        transaction = session.get_transaction()
    savepoint = session.get_nested_transaction()
    memory = session.info.get(_KEY)
    if memory is None or memory.transaction is not transaction or memory.savepoint is not savepoint:
        memory = LedgerMemory(transaction, savepoint)
        session.info[_KEY] = memory
    return memory


def locked_facts(
    session: Session,
    memory: LedgerMemory,
    *,
    customer_id: str,
    event_id: str,
    batch_event_ids: frozenset[str] = frozenset(),
) -> LedgerFacts:
    """The customer's `ledger_facts`, as read after its `customer_mrr` rows were locked (the
    lock may have waited for another worker's commit), and the rows locked."""
    if not memory.recorded:
        _lock_batch_customers(session, memory, customer_id=customer_id, events=batch_event_ids)
    facts = _remembered_facts(session, memory, customer_id=customer_id, event_id=event_id)
    if facts is None:
        facts = ledger_facts(session, customer_id=customer_id, event_id=event_id)
        if lock_recorded_mrr(session, memory, customer_id=customer_id, facts=facts):
            # Locking may have waited for another worker's commit: read what it changed.
            facts = ledger_facts(session, customer_id=customer_id, event_id=event_id)
    return facts


def _lock_batch_customers(
    session: Session, memory: LedgerMemory, *, customer_id: str, events: frozenset[str]
) -> None:
    """The transaction's first lock: the customer's rows and those of every customer the
    unit of work holds subscriptions of or has read subscriptions for (the batch's), with
    one query; then, for the batch's events, the facts of those customers."""
    asked = held_rows.asked_values(session, Subscription, "customer_id")
    customers = {customer_id} | _customers_held(session) | asked
    memory.recorded.update(lock_customers_mrr(session, customer_ids=customers))
    if events and asked:
        memory.subscription_ids, memory.lines = ledger_facts_of_many(
            session, customer_ids=asked, event_ids=events
        )
        memory.events = events
        others = [
            sub_id
            for customer, ids in memory.subscription_ids.items()
            if memory.recorded.get(customer)
            for sub_id in ids
            if held_rows.held_row(session, Subscription, sub_id) is None
        ]
        memory.stored = {row.id: (row, items) for row, items in read_subscriptions(session, others)}
        if not session.info.get(_WATCHING):
            session.info[_WATCHING] = True
            event.listen(session, "after_flush", _forget_batch_facts)


def _forget_batch_facts(session: Session, _flush_context: Any) -> None:
    """`after_flush`: drop the batch's facts if the flush wrote a subscription change the
    store does not know of (the facts would no longer be what the database says)."""
    memory = session.info.get(_KEY)
    if memory is not None and memory.events and flushing_unheld_changes(session):
        memory.events, memory.lines = frozenset(), set()
        memory.subscription_ids, memory.stored = {}, {}


def _remembered_facts(
    session: Session, memory: LedgerMemory, *, customer_id: str, event_id: str
) -> LedgerFacts | None:
    """The facts from the batch's read, with the subscriptions the unit of work has given
    the customer since; None when the read did not cover the customer or the event."""
    stored = memory.subscription_ids.get(customer_id)
    if stored is None or event_id not in memory.events:
        return None
    found = held_rows.found_rows(session, Subscription, "customer_id", customer_id)
    if found is None:
        return None
    ids = list(dict.fromkeys([*stored, *(row.id for row in found)]))
    has_lines = (customer_id, event_id) in memory.lines
    return LedgerFacts(ids, has_lines, bool(memory.recorded.get(customer_id)))


def lock_recorded_mrr(
    session: Session, memory: LedgerMemory, *, customer_id: str, facts: LedgerFacts
) -> bool:
    """Read and lock the customer's `customer_mrr` rows unless the memory has them (the
    transaction's first lock, `locked_facts`, has read the batch's). Returns True when rows
    were locked now: what was read before may have changed while waiting."""
    if customer_id in memory.recorded:
        return False
    if facts.has_recorded_mrr:
        memory.recorded.update(lock_customers_mrr(session, customer_ids=[customer_id]))
    else:  # no row to lock; one another worker inserts meanwhile collides with ours on commit
        memory.recorded[customer_id] = {}
    return bool(memory.recorded[customer_id])


def has_written(
    memory: LedgerMemory, *, customer_id: str, event_id: str, facts: LedgerFacts
) -> bool:
    """Whether the event already wrote ledger lines for the customer, before this
    transaction (`facts`) or in it (the memory: those lines may not be flushed yet)."""
    return facts.event_has_lines or (customer_id, event_id) in memory.written


def _customers_held(session: Session) -> set[str]:
    """Customers of the subscriptions the store holds in this unit of work (the batch's)."""
    customers: set[str] = set()
    for obj in session.identity_map.values():
        if type(obj) is Subscription and held_items(session, obj.id) is not None:
            customers.add(obj.customer_id)
    return customers

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

from sqlalchemy.orm import Session

from storage.held_rows import held_items
from storage.models.billing import Subscription
from storage.models.ledger import CustomerMrr
from storage.revenue import LedgerFacts, lock_customers_mrr

_KEY = "storage.ledger_memory"


@dataclass(eq=False, slots=True)
class LedgerMemory:
    transaction: Any
    savepoint: Any
    # customer id -> currency -> row, locked; a customer present with {} has no row yet
    recorded: dict[str, dict[str, CustomerMrr]] = field(default_factory=dict)
    written: set[tuple[str, str]] = field(default_factory=set)  # (customer, event) with lines


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


def lock_recorded_mrr(
    session: Session, memory: LedgerMemory, *, customer_id: str, facts: LedgerFacts
) -> bool:
    """Read and lock the customer's `customer_mrr` rows unless the memory has them. Returns
    True when rows were locked now: what was read before may have changed while waiting."""
    if customer_id in memory.recorded:
        return False
    if not memory.recorded:  # the first customer: read those the unit of work holds too
        customers = {customer_id} | _customers_held(session)
        memory.recorded.update(lock_customers_mrr(session, customer_ids=customers))
    elif facts.has_recorded_mrr:
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

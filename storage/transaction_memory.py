"""Memory that lives exactly as long as one database transaction of a session.

Several parts of the worker's unit of work remember what they read or queued during a batch
(the alerts of its subjects, the customers its alerts name, the posts to write at commit).
Each keeps one object in `session.info` under its own key; the object records the
transaction it belongs to, and a new transaction (the next batch, or a retry after a
rollback) starts from a fresh one, so nothing read in a rolled-back transaction survives it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from sqlmodel import Session


class Memory(Protocol):
    transaction: Any


MemoryT = TypeVar("MemoryT", bound=Memory)


def transaction_memory(session: Session, key: str, new: Callable[[Any], MemoryT]) -> MemoryT:
    """This transaction's memory under `key`, made by `new(transaction)` the first time."""
    transaction = session.get_transaction()
    memory = session.info.get(key)
    if memory is None or memory.transaction is not transaction:
        memory = session.info[key] = new(transaction)
    return memory


def current_memory(session: Session, key: str) -> Any | None:
    """This transaction's memory under `key` if there is one yet, else None."""
    memory = session.info.get(key)
    if memory is None or memory.transaction is not session.get_transaction():
        return None
    return memory

"""The MRR ledger after an import: bring it in line with what `billbot backfill` or
`billbot import-csv` wrote to the store, which carries no events.

Without this, a new install reported MRR $0 for customers who have paid for years (the ledger
only moved when an event arrived), and the first live event of each of them was counted as a
`new` customer in whatever month it came.

A customer the ledger has never seen gets their current MRR dated when their oldest paying
subscription started (the store keeps no earlier history to do better), so the import does not
inflate this month's `new`. A customer the ledger already follows gets the difference dated now.
Running it again with nothing changed writes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine, func, select
from sqlmodel import Session

from bot.settings import Settings
from handlers.revenue.ledger import policy_from_settings, record_customer_mrr
from storage.db import session_scope
from storage.models.billing import Subscription
from storage.models.ledger import CustomerMrr
from storage.mrr import MRR_STATUSES
from storage.revenue import ledger_customer_ids


def record_imported_mrr(engine: Engine, settings: Settings, *, now: datetime) -> int:
    """Bring every customer's ledger in line with the store; returns the lines written."""
    policy = policy_from_settings(settings)
    event_id = f"import:{now.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    written = 0
    with session_scope(engine) as session:
        followed = set(session.execute(select(CustomerMrr.customer_id).distinct()).scalars())
        for customer_id in ledger_customer_ids(session):
            at = now if customer_id in followed else _paying_since(session, customer_id) or now
            lines = record_customer_mrr(
                session, customer_id=customer_id, at=min(at, now), event_id=event_id, policy=policy
            )
            written += len(lines)
    return written


def _paying_since(session: Session, customer_id: str) -> datetime | None:
    statement = select(func.min(Subscription.created)).where(
        Subscription.customer_id == customer_id, Subscription.status.in_(sorted(MRR_STATUSES))
    )
    return session.execute(statement).scalar_one_or_none()

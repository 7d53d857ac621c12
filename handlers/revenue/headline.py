"""The MRR headline for the App Home and the digest: now, from the per-customer snapshot.

Cheaper than a full report (two small aggregates), and the same figure the report shows
for "now", since the snapshot and the ledger always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlmodel import Session

from bot.settings import Settings
from handlers.revenue.fx import load_fx_rates
from storage.revenue import current_active_customers, current_mrr_by_currency


@dataclass(frozen=True, slots=True)
class MrrHeadline:
    currency: str
    mrr: Decimal  # exact minor units of `currency`
    active_customers: int
    excluded_currencies: tuple[str, ...] = ()  # no exchange rate: left out of both figures


def mrr_headline(session: Session, *, now: datetime, settings: Settings) -> MrrHeadline:
    rates = load_fx_rates(settings)
    total, included, excluded = Decimal(0), [], []
    for currency, amount in sorted(current_mrr_by_currency(session).items()):
        converted = rates.convert(amount, currency, now)
        if converted is None:
            excluded.append(currency)
            continue
        total += converted
        included.append(currency)
    active = current_active_customers(session, currencies=included) if included else 0
    return MrrHeadline(settings.reporting_currency, total, active, tuple(excluded))

"""What a reconciliation found: the `DriftReport`, its plain text, and its dedupe key.

A report is worth posting when events were missed or stored objects differed from Stripe.
Objects Stripe no longer knows (`gone`, usually deleted test data) are listed in a posted
report and logged, but do not post one on their own: they would be found again every night.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from storage.money import format_money


@dataclass
class DriftReport:
    since: datetime
    missed_events: Counter[str] = field(default_factory=Counter)  # event type -> count
    missed_event_ids: list[str] = field(default_factory=list)
    checked: Counter[str] = field(default_factory=Counter)  # object kind -> count
    drifted: dict[str, list[str]] = field(default_factory=dict)  # object kind -> ids
    gone: list[str] = field(default_factory=list)  # stored ids Stripe no longer knows
    mrr_before: dict[str, Decimal] = field(default_factory=dict)  # currency -> minor units
    mrr_after: dict[str, Decimal] = field(default_factory=dict)
    ledger_lines: int = 0  # MRR ledger lines written for repaired subscriptions
    read_at: datetime | None = None  # when the objects were read (the drift's version)
    queued: bool = False  # a run queued this report for Slack

    @property
    def something_was_wrong(self) -> bool:
        return bool(self.missed_events or any(self.drifted.values()) or self.gone)

    @property
    def worth_posting(self) -> bool:
        return bool(self.missed_events or any(self.drifted.values()))

    @property
    def drift_count(self) -> int:
        return sum(len(ids) for ids in self.drifted.values())

    def mrr_changes(self) -> list[tuple[str, Decimal, Decimal]]:
        """(currency, before, after) for every currency whose MRR the repair changed."""
        changes = []
        for currency in sorted(set(self.mrr_before) | set(self.mrr_after)):
            before = self.mrr_before.get(currency, Decimal(0))
            after = self.mrr_after.get(currency, Decimal(0))
            if before != after:
                changes.append((currency, before, after))
        return changes

    def dedupe_key(self) -> str:
        """The same findings give the same key (a retried or overlapping run posts once);
        a repaired object that drifts again later is read at another time, so new drift
        always gets a new key."""
        parts = sorted(self.missed_event_ids) + sorted(
            f"{kind}:{object_id}" for kind, ids in self.drifted.items() for object_id in ids
        )
        if self.drifted and self.read_at is not None:
            parts.append(self.read_at.isoformat())
        digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:24]
        return f"drift-report:{digest}"


def drift_report_text(report: DriftReport) -> str | None:
    """A short report for the digest channel, or None when nothing was wrong."""
    if not report.something_was_wrong:
        return None
    lines = []
    if report.drifted:
        kinds = ", ".join(
            f"{len(ids)} {kind}" for kind, ids in sorted(report.drifted.items()) if ids
        )
        lines.append(f"Repaired {report.drift_count} objects that differed from Stripe: {kinds}.")
    if report.missed_events:
        kinds = ", ".join(f"{name} ×{n}" for name, n in sorted(report.missed_events.items()))
        lines.append(
            f"Re-queued {sum(report.missed_events.values())} missed webhook events: {kinds}."
        )
    if report.gone:
        shown = ", ".join(report.gone[:5])
        lines.append(f"{len(report.gone)} stored objects no longer exist in Stripe: {shown}.")
    for currency, before, after in report.mrr_changes():
        change = format_money(after - before, currency, signed=True)
        lines.append(
            f"MRR ({currency.upper()}): {format_money(before, currency)} before repair, "
            f"{format_money(after, currency)} after ({change})."
        )
    return "\n".join(lines)

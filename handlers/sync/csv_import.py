"""Import Stripe Dashboard CSV exports (customers, subscriptions, invoices) without an API key.

Each row becomes an object shaped like Stripe's API and goes through `apply_object`, the
same conversion and version guard as webhooks and the backfill. Column names are matched
case-insensitively; each field accepts the Dashboard's name and a few variants
(`COLUMNS`; docs/backfill.md lists them). Amounts in the export are in major units
("1,234.50"); they are turned into integer minor units with the currency's exponent.
Dates without a zone are UTC, as the Dashboard's "(UTC)" columns are.

The whole file is checked before anything is written: a file with a bad row imports
nothing and the error names every bad line and column (up to `MAX_ERRORS`).

Versions: an export shows the state at the time it was made, so its rows carry that time
(`exported_at`, by default the file's modification time) less one second; anything a
webhook delivered after the export wins over the file.

Like a backfill, an import writes the timeline (through the conversion) and, for
subscriptions, the MRR ledger dated at the subscriptions' own times (handlers/sync/history.py);
it never posts to Slack.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO, Any

from sqlalchemy import Engine

from handlers.stripe.registry import Change
from handlers.sync.backfill import AfterObject, ApplyObject, default_apply_object
from handlers.sync.csv_cells import (
    CsvImportError,
    parse_amount,
    parse_bool,
    parse_currency,
    parse_int,
    parse_time,
)
from handlers.sync.history import LedgerFeed, touched_subscriptions
from storage.db import session_scope
from storage.mrr import DEFAULT_POLICY, MrrPolicy
from storage.types import utcnow

KINDS = ("customers", "subscriptions", "invoices")
MAX_ERRORS = 20

# field -> accepted column names (first is the Dashboard's); a leading "*" marks a required field.
COLUMNS: dict[str, dict[str, tuple[str, ...]]] = {
    "customers": {
        "*id": ("id", "Customer ID"),
        "email": ("Email",),
        "name": ("Name",),
        "description": ("Description",),
        "created": ("Created (UTC)", "Created"),
        "currency": ("Currency",),
        "delinquent": ("Delinquent",),
    },
    "subscriptions": {
        "*id": ("id", "Subscription ID"),
        "*customer": ("Customer ID", "Customer"),
        "*status": ("Status",),
        "*currency": ("Currency",),
        "plan": ("Plan", "Price ID", "Plan ID", "Price"),
        "product": ("Product", "Product ID"),
        "plan_name": ("Plan Name", "Product Name", "Plan Nickname"),
        "quantity": ("Quantity",),
        "interval": ("Interval",),
        "interval_count": ("Interval Count",),
        "amount": ("Amount",),
        "created": ("Created (UTC)", "Created"),
        "start_date": ("Start Date (UTC)", "Start (UTC)", "Start Date"),
        "current_period_start": ("Current Period Start (UTC)", "Current Period Start"),
        "current_period_end": ("Current Period End (UTC)", "Current Period End"),
        "trial_start": ("Trial Start (UTC)", "Trial Start"),
        "trial_end": ("Trial End (UTC)", "Trial End"),
        "canceled_at": ("Canceled At (UTC)", "Canceled At"),
        "ended_at": ("Ended At (UTC)", "Ended At"),
        "cancel_at_period_end": ("Cancel At Period End",),
    },
    "invoices": {
        "*id": ("id", "Invoice ID"),
        "*customer": ("Customer", "Customer ID"),
        "*currency": ("Currency",),
        "status": ("Status",),
        "number": ("Number",),
        "amount_due": ("Amount Due",),
        "amount_paid": ("Amount Paid",),
        "amount_remaining": ("Amount Remaining",),
        "total": ("Total",),
        "created": ("Date (UTC)", "Created (UTC)", "Date", "Created"),
        "due_date": ("Due Date (UTC)", "Due Date"),
        "period_start": ("Period Start (UTC)", "Period Start"),
        "period_end": ("Period End (UTC)", "Period End"),
        "subscription": ("Subscription", "Subscription ID"),
        "attempt_count": ("Attempt Count",),
        "billing_reason": ("Billing Reason",),
    },
}


@dataclass(frozen=True, slots=True)
class ImportResult:
    kind: str
    rows: int
    applied: int
    ledger_lines: int = 0


def import_csv(
    *,
    engine: Engine,
    kind: str,
    stream: IO[str],
    exported_at: datetime,
    apply_object: ApplyObject | None = None,
    after_object: AfterObject | None = None,
    livemode: bool = False,
    feed_ledger: bool = True,
    policy: MrrPolicy = DEFAULT_POLICY,
    now: datetime | None = None,
) -> ImportResult:
    objects = read_objects(kind, stream, livemode=livemode)
    apply = apply_object or default_apply_object()
    version_at = exported_at.astimezone(UTC).replace(microsecond=0) - timedelta(seconds=1)
    applied = 0
    every_change: list[Change] = []
    with session_scope(engine) as session:
        for obj in objects:
            changes = apply(session, obj, version_at=version_at)
            if after_object:
                after_object(session, changes)
            every_change.extend(changes)
            applied += any(change.applied for change in changes)
    lines = 0
    if feed_ledger and kind == "subscriptions":
        lines = LedgerFeed(engine, policy).feed(
            touched_subscriptions(every_change), read_at=version_at, now=now or utcnow()
        )
    return ImportResult(kind, len(objects), applied, lines)


def read_objects(kind: str, stream: IO[str], *, livemode: bool = False) -> list[dict[str, Any]]:
    """Stripe-shaped objects for every row, or `CsvImportError` naming every bad row."""
    if kind not in COLUMNS:
        raise CsvImportError(f"unknown kind {kind!r}; choose from {', '.join(KINDS)}")
    reader = csv.DictReader(stream)
    columns = _column_map(kind, reader.fieldnames or [])
    build = BUILDERS[kind]
    objects, errors = [], []
    for line, row in enumerate(reader, start=2):
        fields = {name: (row.get(column) or "").strip() for name, column in columns.items()}
        try:
            objects.append({**build(fields), "livemode": livemode})
        except CsvImportError as exc:
            errors.append(f"line {line}: {exc}")
    if errors:
        more = f"\n  ... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise CsvImportError(
            "nothing imported; fix these rows:\n  " + "\n  ".join(errors[:MAX_ERRORS]) + more
        )
    return objects


def _column_map(kind: str, header: Iterable[str]) -> dict[str, str]:
    present = {name.strip().lstrip("\ufeff").lower(): name for name in header if name}
    columns, missing = {}, []
    for field, names in COLUMNS[kind].items():
        found = next((present[n.lower()] for n in names if n.lower() in present), None)
        if found is not None:
            columns[field.lstrip("*")] = found
        elif field.startswith("*"):
            missing.append(" or ".join(repr(n) for n in names))
    if missing:
        raise CsvImportError(
            f"this does not look like a Stripe {kind} export: missing column {', '.join(missing)} "
            f"(found: {', '.join(present.values()) or 'no header'})"
        )
    return columns


def label(kind: str, field: str) -> str:
    """The Dashboard's name for a field, for error messages."""
    names = COLUMNS[kind].get(field) or COLUMNS[kind][f"*{field}"]
    return names[0]


# -- row builders ---------------------------------------------------------------------------
SUBSCRIPTION_STATUSES = frozenset(
    [
        "incomplete",
        "incomplete_expired",
        "trialing",
        "active",
        "past_due",
        "canceled",
        "unpaid",
        "paused",
    ]
)
INVOICE_STATUSES = frozenset(["draft", "open", "paid", "uncollectible", "void"])
_SUB_TIMES = (
    "created",
    "start_date",
    "current_period_start",
    "current_period_end",
    "trial_start",
    "trial_end",
    "canceled_at",
    "ended_at",
)


def _status(value: str, allowed: frozenset[str]) -> str | None:
    status = value.strip().lower().replace(" ", "_") or None
    if status is not None and status not in allowed:
        raise CsvImportError(f"Status: {value!r} is not one of {', '.join(sorted(allowed))}")
    return status


def build_customer(f: dict[str, str]) -> dict[str, Any]:
    return {
        "id": f["id"],
        "object": "customer",
        "email": f.get("email") or None,
        "name": f.get("name") or None,
        "description": f.get("description") or None,
        "created": parse_time(f.get("created", ""), label("customers", "created")),
        "currency": parse_currency(f) or None,
        "delinquent": parse_bool(f.get("delinquent", "")),
        "metadata": {},
    }


def build_subscription(f: dict[str, str]) -> dict[str, Any]:
    currency = parse_currency(f)
    times = {key: parse_time(f.get(key, ""), label("subscriptions", key)) for key in _SUB_TIMES}
    unit_amount = parse_amount(f.get("amount", ""), currency, "Amount")
    price = {
        "id": f.get("plan") or f"price_csv_{f['id']}",
        "object": "price",
        "billing_scheme": "per_unit",
        "currency": currency,
        "nickname": f.get("plan_name") or None,
        "product": f.get("product") or None,
        "recurring": {
            "interval": (f.get("interval") or "month").lower(),
            "interval_count": parse_int(f.get("interval_count", ""), "Interval Count", 1),
            "usage_type": "licensed",
        },
        "tiers_mode": None,
        "type": "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": str(unit_amount) if unit_amount is not None else None,
    }
    item = {
        "id": f"si_csv_{f['id']}",
        "object": "subscription_item",
        "price": price,
        "quantity": parse_int(f.get("quantity", ""), "Quantity", 1),
        "subscription": f["id"],
        "current_period_start": times["current_period_start"],
        "current_period_end": times["current_period_end"],
    }
    return {
        "id": f["id"],
        "object": "subscription",
        "customer": f["customer"],
        "status": _status(f["status"], SUBSCRIPTION_STATUSES),
        "currency": currency,
        "cancel_at_period_end": parse_bool(f.get("cancel_at_period_end", "")),
        "cancel_at": None,
        "canceled_at": times["canceled_at"],
        "ended_at": times["ended_at"],
        "created": times["created"],
        "start_date": times["start_date"] or times["created"],
        "trial_start": times["trial_start"],
        "trial_end": times["trial_end"],
        "discounts": [],
        "items": {"object": "list", "data": [item], "has_more": False},
        "metadata": {},
    }


def build_invoice(f: dict[str, str]) -> dict[str, Any]:
    currency = parse_currency(f)
    amounts = {
        key: parse_amount(f.get(key, ""), currency, label("invoices", key))
        for key in ("amount_due", "amount_paid", "amount_remaining", "total")
    }
    due, paid = amounts["amount_due"] or 0, amounts["amount_paid"] or 0
    status = _status(f.get("status", ""), INVOICE_STATUSES)
    created = parse_time(f.get("created", ""), label("invoices", "created"))
    parent = None
    if f.get("subscription"):
        parent = {
            "type": "subscription_details",
            "subscription_details": {"subscription": f["subscription"]},
        }
    return {
        "id": f["id"],
        "object": "invoice",
        "customer": f["customer"],
        "status": status,
        "number": f.get("number") or None,
        "currency": currency,
        "amount_due": due,
        "amount_paid": paid,
        "amount_remaining": amounts["amount_remaining"]
        if amounts["amount_remaining"] is not None
        else due - paid,
        "total": amounts["total"] if amounts["total"] is not None else due,
        "attempt_count": parse_int(f.get("attempt_count", ""), "Attempt Count", 0),
        "billing_reason": f.get("billing_reason") or None,
        "created": created,
        **{
            key: parse_time(f.get(key, ""), label("invoices", key))
            for key in ("due_date", "period_start", "period_end")
        },
        "parent": parent,
        "status_transitions": {"paid_at": None},
        "metadata": {},
    }


BUILDERS: dict[str, Callable[[dict[str, str]], dict[str, Any]]] = {
    "customers": build_customer,
    "subscriptions": build_subscription,
    "invoices": build_invoice,
}

"""`billbot lookup QUERY [--json]`: what the store knows about a customer.

Exit codes: 0 at least one match, 1 no match (close matches are suggested), 2 empty or
garbled query, 3 the store cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.exc import SQLAlchemyError

from bot.settings import Settings
from storage.customer_summary import CustomerSummary, LookupAnswer, lookup_customers
from storage.db import make_engine, read_scope
from storage.lookup import DEFAULT_LIMIT, InvalidQuery
from storage.money import Money, format_money

USAGE = "usage: billbot lookup QUERY [--json]\n  QUERY is an email, a cus_ id, or part of a customer's name."
NO_MATCH = "No customer matches {query!r}."
DID_YOU_MEAN = "Did you mean: {suggestions}?"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("lookup", help="show a customer's payment status from the store")
    parser.add_argument("query", nargs="*", help="an email, a cus_ id or part of a name")
    parser.add_argument("--json", action="store_true", help='print {"matches": [...]} as JSON')
    parser.add_argument(
        "--limit", type=int, default=DEFAULT_LIMIT, help="show at most this many matches"
    )
    parser.set_defaults(handler=run_lookup)


def run_lookup(args: argparse.Namespace, settings: Settings, *, now: datetime | None = None) -> int:
    engine = make_engine(settings.database_url)
    try:
        with read_scope(engine) as session:
            answer = lookup_customers(
                session=session, text=" ".join(args.query), now=now or datetime.now(UTC),
                limit=max(1, min(args.limit, 100)), default_currency=settings.reporting_currency,
            )  # fmt: skip
    except InvalidQuery as exc:
        print(f"billbot lookup: {exc}\n{USAGE}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(
            f"billbot lookup: cannot read the store ({type(exc).__name__}); has `billbot migrate` run?",
            file=sys.stderr,
        )
        return 3
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(answer_as_json(answer), ensure_ascii=False, indent=2))
    else:
        print(answer_as_text(answer, settings.timezone))
    return 0 if answer.matches else 1


def iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def money(value: Money) -> dict[str, Any]:
    return value.as_json()


def answer_as_json(answer: LookupAnswer) -> dict[str, Any]:
    return {
        "query": {"kind": answer.query.kind.value, "text": answer.query.text},
        "matches": [summary_as_json(summary) for summary in answer.matches],
        "total": answer.total,
        "total_is_capped": answer.total_is_capped,
        "suggestions": answer.suggestions,
    }


def summary_as_json(s: CustomerSummary) -> dict[str, Any]:
    last = s.last_payment
    return {
        "customer_id": s.customer_id, "email": s.email, "name": s.name, "livemode": s.livemode,
        "deleted": s.deleted, "status": s.status.value,
        "mrr": money(s.mrr), "mrr_by_currency": [money(m) for m in s.mrr_by_currency],
        "lifetime_value": money(s.lifetime_value),
        "lifetime_value_by_currency": [money(m) for m in s.lifetime_value_by_currency],
        "subscriptions": [
            {
                "id": sub.id, "status": sub.status, "plan": sub.plan, "interval": sub.interval,
                "interval_count": sub.interval_count, "quantity": sub.quantity, "mrr": money(sub.mrr),
                "current_period_end": iso(sub.current_period_end), "trial_end": iso(sub.trial_end),
                "cancel_at_period_end": sub.cancel_at_period_end, "cancel_at": iso(sub.cancel_at),
                "canceled_at": iso(sub.canceled_at), "ended_at": iso(sub.ended_at), "as_of": iso(sub.as_of),
            }
            for sub in s.subscriptions
        ],
        "open_invoices": [
            {
                "id": inv.id, "status": inv.status, "number": inv.number,
                "amount_remaining": inv.amount_remaining.amount, "currency": inv.amount_remaining.currency,
                "attempt_count": inv.attempt_count, "next_payment_attempt": iso(inv.next_payment_attempt),
                "due_date": iso(inv.due_date), "overdue": inv.overdue, "hosted_invoice_url": inv.hosted_invoice_url,
                "as_of": iso(inv.as_of),
            }
            for inv in s.open_invoices
        ],
        "last_payment": None if last is None else {
            "id": last.id, "amount": last.amount, "currency": last.currency, "at": iso(last.at),
        },
        "next_payment_attempt": iso(s.next_payment_attempt),
        "as_of": iso(s.as_of),
    }  # fmt: skip


def answer_as_text(answer: LookupAnswer, zone: ZoneInfo) -> str:
    if not answer.matches:
        lines = [NO_MATCH.format(query=answer.query.text)]
        if answer.suggestions:
            lines.append(DID_YOU_MEAN.format(suggestions=", ".join(answer.suggestions)))
        return "\n".join(lines)
    blocks = [summary_as_text(summary, zone) for summary in answer.matches]
    if answer.total > len(answer.matches):
        more = "more than " if answer.total_is_capped else ""
        blocks.append(
            f"Showing {len(answer.matches)} of {more}{answer.total} matches; refine the query to see others."
        )
    return "\n\n".join(blocks)


def summary_as_text(s: CustomerSummary, zone: ZoneInfo) -> str:
    def when(moment: datetime | None) -> str:
        return "-" if moment is None else moment.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z")

    def amounts(values: tuple[Money, ...], main: Money) -> str:
        others = [str(value) for value in values if value.currency != main.currency]
        return str(main) + (f" (also {', '.join(others)})" if others else "")

    mode = "" if s.livemode else "  [test mode]"
    lines = [
        f"{s.name or '(no name)'} <{s.email or 'no email'}>  {s.customer_id}{mode}",
        f"  Status:          {s.status.value}" + ("  (deleted in Stripe)" if s.deleted else ""),
        f"  MRR:             {amounts(s.mrr_by_currency, s.mrr)}",
        f"  Lifetime value:  {amounts(s.lifetime_value_by_currency, s.lifetime_value)}",
    ]
    last = s.last_payment
    lines.append(
        f"  Last payment:    {format_money(last.amount, last.currency)} on {when(last.at)}"
        if last
        else "  Last payment:    none"
    )
    for sub in s.subscriptions:
        every = (
            f"every {sub.interval_count} {sub.interval}s"
            if (sub.interval_count or 1) > 1
            else f"every {sub.interval}"
        )
        detail = [f"{sub.plan or 'no plan'} x{sub.quantity}", every, f"{sub.mrr}/mo"]
        if sub.trial_end and sub.status == "trialing":
            detail.append(f"trial ends {when(sub.trial_end)}")
        elif sub.cancel_at and sub.status not in ("canceled", "incomplete_expired"):
            detail.append(f"cancels {when(sub.cancel_at)}")
        elif sub.current_period_end and sub.status not in ("canceled", "incomplete_expired"):
            detail.append(f"renews {when(sub.current_period_end)}")
        elif sub.ended_at:
            detail.append(f"ended {when(sub.ended_at)}")
        lines.append(f"  Subscription {sub.id}  {sub.status}: " + ", ".join(detail))
    for inv in s.open_invoices:
        detail = [f"{inv.amount_remaining} remaining", f"{inv.attempt_count} attempt(s)"]
        if inv.next_payment_attempt:
            detail.append(f"next attempt {when(inv.next_payment_attempt)}")
        if inv.due_date:
            detail.append(f"due {when(inv.due_date)}")
        lines.append(
            f"  Invoice {inv.id}  {inv.status}{'  OVERDUE' if inv.overdue else ''}: "
            + ", ".join(detail)
        )
    lines.append(f"  As of:           {when(s.as_of)}")
    return "\n".join(lines)

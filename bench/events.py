"""A realistic stream of Stripe events for the benchmarks, built with the test suite's payload
factories (tests/factories), so every payload is shaped like what Stripe sends.

Each customer's story is a dozen events in one API shape (customers alternate between
2024-06-20 and 2026-07-29.dahlia): the customer is created and later updated; a
subscription is created, then updated (every other customer upgrades from 2 seats to 5; the
others change their card); its first invoice is finalized, paid (with its
charge, and the basil `invoice_payment.paid`); its second invoice is finalized and then
paid, or fails (one customer in three: `invoice.payment_failed` and `charge.failed`); one
in four gets a refund (`charge.refunded`, `refund.created`); one in five schedules a
cancellation. Events are ordered by `created`, as a live account sends them, and stories
interleave: several customers are active in the same seconds.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import factories as f  # noqa: E402

STORY_SECONDS = 40  # how long one customer's story lasts
STORIES_PER_SECOND = 4  # customers starting in each second


def story(number: int, start: int) -> list[dict[str, Any]]:
    """One customer's events, each with its own `created` offset from `start`."""
    version = f.API_VERSIONS[number % 2]
    basil = f.is_basil(version)
    events: list[dict[str, Any]] = []

    def emit(offset: int, event_type: str, obj: dict[str, Any], **kwargs: Any) -> None:
        events.append(
            f.event(event_type, obj, created=start + offset, api_version=version, **kwargs)
        )

    person = f.customer(
        api_version=version, email=f"buyer{number}@example.com", name=f"Buyer {number}"
    )
    cus = person["id"]
    emit(0, "customer.created", person)
    seats = f.price(api_version=version, unit_amount=1000 + 100 * (number % 7), nickname="Seats")
    line = f.item(seats, 2)
    sub = f.subscription(api_version=version, customer=cus, items=[line], created=start)
    emit(1, "customer.subscription.created", sub)
    _pay_invoice(emit, version, cus, sub["id"], at=2, amount=2 * seats["unit_amount"], fail=False)
    emit(5, "customer.updated", {**person, "email": f"billing{number}@example.com"},
         previous_attributes={"email": person["email"]})  # fmt: skip
    if number // 2 % 2 == 0:  # an upgrade: 2 seats to 5 (in both API shapes)
        old_items = {"object": "list", "data": [sub["items"]["data"][0]]}
        sub = f.subscription(api_version=version, customer=cus, items=[f.item(seats, 5, id=line.id)],
                             id=sub["id"], created=start)  # fmt: skip
        previous = {"items": old_items} if basil else {"items": old_items, "quantity": 2}
    else:  # a new card on file: nothing that moves MRR
        sub = {**sub, "default_payment_method": f.new_id("pm")}
        previous = {"default_payment_method": None}
    emit(6, "customer.subscription.updated", sub, previous_attributes=previous)
    quantity = sub["items"]["data"][0]["quantity"]
    paid = _pay_invoice(emit, version, cus, sub["id"], at=10, amount=quantity * seats["unit_amount"],
                        fail=number % 3 == 0)  # fmt: skip
    if number % 4 == 1 and paid is not None:
        emit(
            20,
            "charge.refunded",
            {**paid, "amount_refunded": 1000},
            previous_attributes={"amount_refunded": 0},
        )
        emit(20, "refund.created", f.refund(charge=paid["id"], amount=1000, created=start + 20))
    if number % 5 == 2:
        ending = {**sub, "cancel_at_period_end": True}
        emit(
            30,
            "customer.subscription.updated",
            ending,
            previous_attributes={"cancel_at_period_end": False},
        )
    return events


def _pay_invoice(
    emit, version: str, cus: str, sub: str, *, at: int, amount: int, fail: bool
) -> dict | None:
    """An invoice finalized, then paid or failed, with its charge. Returns the paid charge."""
    basil = f.is_basil(version)
    invoice_id, intent = f.new_id("in"), f.new_id("pi")
    opened = f.invoice(
        api_version=version, customer=cus, subscription=sub, id=invoice_id, amount_due=amount
    )
    emit(at, "invoice.finalized", opened)
    charge = f.charge(api_version=version, customer=cus, amount=amount, payment_intent=intent,
                      invoice=invoice_id, status="failed" if fail else "succeeded",
                      failure_code="card_declined" if fail else None)  # fmt: skip
    if fail:
        emit(at + 1, "charge.failed", charge)
        failed = f.invoice(api_version=version, customer=cus, subscription=sub, id=invoice_id,
                           amount_due=amount, attempt_count=1, next_payment_attempt=opened["created"] + 3 * f.DAY,
                           payment_intent=intent, charge=charge["id"])  # fmt: skip
        emit(at + 1, "invoice.payment_failed", failed)
        return None
    emit(at + 1, "charge.succeeded", charge)
    paid = f.invoice(api_version=version, customer=cus, subscription=sub, id=invoice_id, status="paid",
                     amount_due=amount, amount_paid=amount, attempt_count=1, paid_at=opened["created"],
                     payment_intent=intent, charge=charge["id"])  # fmt: skip
    if basil:
        emit(at + 2, "invoice_payment.paid", f.invoice_payment(invoice=invoice_id, payment_intent=intent,
                                                               amount_paid=amount))  # fmt: skip
    emit(at + 2, "invoice.paid", paid)
    return charge


def event_stream(count: int, *, start: int = f.T0) -> list[dict[str, Any]]:
    """`count` events from interleaved stories, oldest `created` first."""
    events: list[dict[str, Any]] = []
    number = 0
    while len(events) < count:
        events += story(number, start + number // STORIES_PER_SECOND)
        number += 1
    events.sort(key=lambda event: event["created"])
    return events[:count]


def encoded(events: list[dict[str, Any]]) -> Iterator[bytes]:
    """Bodies as Stripe sends them (pretty-printed JSON)."""
    for event in events:
        yield json.dumps(event, indent=2).encode()

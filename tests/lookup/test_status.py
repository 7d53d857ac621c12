"""How one status word is derived from subscriptions and open invoices (docs/customer-status.md)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage.customer_status import CustomerStatus, derive_status, invoice_is_overdue
from tests.store_rows import T0


@pytest.mark.parametrize(
    ("deleted", "statuses", "overdue_invoice", "expected"),
    [
        (False, [], False, CustomerStatus.NONE),
        (False, ["incomplete"], False, CustomerStatus.NONE),
        (False, ["active"], False, CustomerStatus.CURRENT),
        (False, ["trialing"], False, CustomerStatus.TRIALING),
        (False, ["paused"], False, CustomerStatus.PAUSED),
        (False, ["canceled", "incomplete_expired"], False, CustomerStatus.CANCELLED),
        (False, ["canceled", "incomplete"], False, CustomerStatus.NONE),
        (False, ["active", "past_due"], False, CustomerStatus.OVERDUE),
        (False, ["unpaid"], False, CustomerStatus.OVERDUE),
        (False, ["active"], True, CustomerStatus.OVERDUE),
        (False, ["canceled"], True, CustomerStatus.OVERDUE),
        (False, [], True, CustomerStatus.OVERDUE),
        (False, ["trialing", "active"], False, CustomerStatus.CURRENT),
        (False, ["paused", "trialing"], False, CustomerStatus.TRIALING),
        (False, ["canceled", "paused"], False, CustomerStatus.PAUSED),
        (True, ["active"], True, CustomerStatus.CANCELLED),
        (True, [], False, CustomerStatus.CANCELLED),
    ],
)
def test_status_precedence(deleted, statuses, overdue_invoice, expected):
    assert (
        derive_status(
            deleted=deleted, subscription_statuses=statuses, any_invoice_overdue=overdue_invoice
        )
        is expected
    )


@pytest.mark.parametrize(
    ("status", "remaining", "attempts", "due_in_days", "expected"),
    [
        ("open", 1000, 0, None, False),  # finalized, not yet attempted
        ("open", 1000, 1, None, True),  # a failed attempt
        ("open", 1000, 0, 3, False),  # send_invoice, not due yet
        ("open", 1000, 0, -1, True),  # send_invoice, past due
        ("open", 0, 2, -1, False),  # nothing left to pay
        ("uncollectible", 1000, 0, None, True),
        ("paid", 0, 3, -5, False),
        ("void", 1000, 1, -5, False),
        ("draft", 1000, 0, -5, False),
    ],
)
def test_when_an_invoice_is_overdue(status, remaining, attempts, due_in_days, expected):
    due = None if due_in_days is None else T0 + timedelta(days=due_in_days)
    assert (
        invoice_is_overdue(
            status=status, amount_remaining=remaining, attempt_count=attempts, due_date=due, now=T0
        )
        is expected
    )

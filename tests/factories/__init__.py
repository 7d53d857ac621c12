"""Stripe payloads of our own, shaped like Stripe's example objects, in either API shape.

Every factory takes `api_version`: `OLD` (2024-06-20, before 2025-03-31.basil) or `NEW`
(2026-07-29.dahlia) and produces what Stripe sends for that version:

- before basil: `subscription.current_period_*`, `subscription.discount` with `coupon`,
  `invoice.subscription` / `.payment_intent` / `.charge` / `.paid`, `charge.invoice`;
- basil on: `items.data[].current_period_*`, `discounts[]` with `source.coupon`,
  `invoice.parent.subscription_details`, `invoice.payments`, no `charge.invoice`.

Ids are unique per call unless given. Timestamps are Unix seconds.
"""

from tests.factories.charges import charge, refund
from tests.factories.common import API_VERSIONS, DAY, NEW, OLD, T0, event, is_basil, new_id
from tests.factories.customers import coupon, customer, plan, price, product
from tests.factories.invoices import invoice, invoice_payment
from tests.factories.subscriptions import Item, discount, item, subscription

__all__ = [
    "API_VERSIONS", "DAY", "NEW", "OLD", "T0", "Item", "charge", "coupon", "customer", "discount", "event",
    "invoice", "invoice_payment", "is_basil", "item", "new_id", "plan", "price", "product", "refund", "subscription",
]  # fmt: skip

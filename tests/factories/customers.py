"""Customers and what subscriptions are priced with: products, prices, legacy plans, coupons."""

from __future__ import annotations

from typing import Any

from tests.factories.common import NEW, T0, is_basil, new_id


def customer(
    *,
    api_version: str = NEW,
    id: str | None = None,
    email: str | None = "ada@example.com",
    name: str | None = "Ada Lovelace",
    currency: str | None = "usd",
    created: int = T0,
    default_payment_method: str | dict | None = None,
    default_source: str | None = None,
    delinquent: bool = False,
    livemode: bool = False,
) -> dict[str, Any]:
    obj = {
        "id": id or new_id("cus"),
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": created,
        "currency": currency,
        "default_source": default_source,
        "delinquent": delinquent,
        "description": None,
        "email": email,
        "invoice_prefix": "7FE1103",
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": default_payment_method,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": livemode,
        "metadata": {},
        "name": name,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    if not is_basil(api_version):
        obj["discount"] = None
    return obj


def product(*, api_version: str = NEW, id: str | None = None, name: str = "Pro") -> dict[str, Any]:
    """Products look the same in both shapes."""
    return {
        "id": id or new_id("prod"),
        "object": "product",
        "active": True,
        "name": name,
        "created": T0,
    }


def price(
    *,
    api_version: str = NEW,
    id: str | None = None,
    unit_amount: int | None = 2000,
    unit_amount_decimal: str | None = None,
    currency: str = "usd",
    interval: str = "month",
    interval_count: int = 1,
    usage_type: str = "licensed",
    nickname: str | None = None,
    product: str | dict | None = None,
    billing_scheme: str = "per_unit",
    tiers_mode: str | None = None,
    tiers: list[dict[str, Any]] | None = None,
    livemode: bool = False,
) -> dict[str, Any]:
    obj = {
        "id": id or new_id("price"),
        "object": "price",
        "active": True,
        "billing_scheme": billing_scheme,
        "created": T0,
        "currency": currency,
        "custom_unit_amount": None,
        "livemode": livemode,
        "lookup_key": None,
        "metadata": {},
        "nickname": nickname,
        "product": product if product is not None else new_id("prod"),
        "recurring": {
            "interval": interval,
            "interval_count": interval_count,
            "meter": None,
            "usage_type": usage_type,
            "trial_period_days": None,
        },
        "tax_behavior": "unspecified",
        "tiers_mode": tiers_mode,
        "transform_quantity": None,
        "type": "recurring",
        "unit_amount": unit_amount,
        "unit_amount_decimal": unit_amount_decimal
        if unit_amount_decimal is not None
        else (str(unit_amount) if unit_amount is not None else None),
    }
    if tiers is not None:
        obj["tiers"] = tiers  # only present when expanded
    return obj


def plan(price_obj: dict[str, Any]) -> dict[str, Any]:
    """The legacy `plan` Stripe still puts beside `price` on subscription items."""
    recurring = price_obj["recurring"]
    return {
        "id": price_obj["id"],
        "object": "plan",
        "active": True,
        "amount": price_obj["unit_amount"],
        "amount_decimal": price_obj["unit_amount_decimal"],
        "billing_scheme": price_obj["billing_scheme"],
        "created": price_obj["created"],
        "currency": price_obj["currency"],
        "interval": recurring["interval"],
        "interval_count": recurring["interval_count"],
        "livemode": price_obj["livemode"],
        "metadata": {},
        "meter": None,
        "nickname": price_obj["nickname"],
        "product": price_obj["product"],
        "tiers_mode": price_obj["tiers_mode"],
        "transform_usage": None,
        "trial_period_days": None,
        "usage_type": recurring["usage_type"],
    }


def coupon(
    *,
    api_version: str = NEW,
    id: str | None = None,
    percent_off: float | None = None,
    amount_off: int | None = None,
    currency: str | None = None,
    duration: str = "forever",
) -> dict[str, Any]:
    return {
        "id": id or new_id("co").upper(),
        "object": "coupon",
        "amount_off": amount_off,
        "currency": currency,
        "duration": duration,
        "duration_in_months": 3 if duration == "repeating" else None,
        "percent_off": percent_off,
        "valid": True,
        "created": T0,
        "livemode": False,
        "metadata": {},
        "name": None,
    }

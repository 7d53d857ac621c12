"""The one place a `stripe.StripeClient` is built from settings.

`STRIPE_API_BASE` points it at another server (tests start a loopback stand-in for
Stripe's API). Only secret (`sk_`) and restricted (`rk_`) keys can read lists; a
publishable key (`pk_`) is refused here with a message that names the variable.
"""

from __future__ import annotations

import stripe

from bot.settings import Settings


class StripeKeyError(ValueError):
    """STRIPE_API_KEY is missing or is not a key that can read Stripe's API."""


def api_key(settings: Settings) -> str:
    key = settings.stripe_api_key.get_secret_value().strip() if settings.stripe_api_key else ""
    if not key:
        raise StripeKeyError(
            "STRIPE_API_KEY is not set: backfill and reconcile read Stripe's API and need a secret "
            "key (sk_live_... or sk_test_...) or a restricted key with read access (rk_...). "
            "Without a key, use `billbot import-csv` with a Dashboard export."
        )
    if not key.startswith(("sk_", "rk_")):
        raise StripeKeyError(
            "STRIPE_API_KEY must be a secret key (sk_...) or a restricted key (rk_...); "
            "publishable keys (pk_...) cannot read customers or subscriptions"
        )
    return key


def make_stripe_client(settings: Settings, *, max_network_retries: int = 0) -> stripe.StripeClient:
    """A client for `settings.stripe_api_base`.

    `max_network_retries` defaults to 0 because billbot's own `Pacer` retries (with the
    waits logged and testable); pass more for one-off calls made without a pacer.
    """
    return stripe.StripeClient(
        api_key(settings),
        base_addresses={"api": settings.stripe_api_base.rstrip("/")},
        max_network_retries=max_network_retries,
    )

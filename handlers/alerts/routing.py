"""Which channel an alert goes to, and whether it is big enough to post.

Kinds are grouped into five routes, each with an optional channel of its own and an
optional minimum amount; `SLACK_ALERT_CHANNEL` takes whatever has no channel of its own.
"""

from __future__ import annotations

from bot.settings import Settings
from storage.models.alerts import AlertKind

ROUTES: dict[AlertKind, str] = {
    AlertKind.PAYMENT_FAILED: "payment_failed",
    AlertKind.ACTION_REQUIRED: "payment_failed",
    AlertKind.UNCOLLECTIBLE: "payment_failed",
    AlertKind.CANCELED: "cancellation",
    AlertKind.CANCEL_SCHEDULED: "cancellation",
    AlertKind.CANCEL_UNDONE: "cancellation",
    AlertKind.UPGRADE: "upgrade",
    AlertKind.DOWNGRADE: "upgrade",
    AlertKind.PLAN_CHANGED: "upgrade",
    AlertKind.TRIAL_CONVERTED: "trial",
    AlertKind.TRIAL_ENDING: "trial",
    AlertKind.REFUND: "refund",
}
CONSOLE_CHANNEL = "#billbot-console"  # console mode with no channel configured


def route(kind: AlertKind) -> str:
    return ROUTES[kind]


def channel_for(kind: AlertKind, settings: Settings) -> str | None:
    """The kind's own channel, else the alert channel; None means "nowhere to post"."""
    own = getattr(settings, f"slack_channel_{route(kind)}")
    channel = own or settings.slack_alert_channel
    if channel is None and not settings.slack_enabled:
        return CONSOLE_CHANNEL
    return channel


def min_amount_for(kind: AlertKind, settings: Settings) -> int:
    return getattr(settings, f"slack_min_amount_{route(kind)}")


def big_enough(kind: AlertKind, amount: int | None, settings: Settings) -> bool:
    """Amounts are compared in the event's own currency's minor units; unknown amounts pass."""
    minimum = min_amount_for(kind, settings)
    return minimum <= 0 or amount is None or abs(amount) >= minimum

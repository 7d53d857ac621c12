"""Typed settings, read once from the environment (and an optional `.env`).

Every setting is documented in the README's configuration table; `tests/test_settings.py`
checks that the table and this class name the same variables. Secrets are `SecretStr` so
they never show up in a log line or a traceback.
"""

from __future__ import annotations

from datetime import time
from decimal import Decimal, InvalidOperation
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

CommaList = Annotated[list[str], NoDecode]


def _split_commas(value: object) -> object:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    # Storage and web server
    database_url: str = "sqlite:///./billbot.db"
    host: str = "127.0.0.1"
    port: int = Field(default=3000, ge=1, le=65535)
    log_level: str = "INFO"

    # Stripe
    stripe_webhook_secret: CommaList = Field(default_factory=list)
    stripe_api_key: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_accept_test_events: bool = True
    stripe_accept_live_events: bool = True
    webhook_max_body_bytes: int = 1024 * 1024
    # Webhook feed watch (handlers/sync/webhook_health.py)
    webhook_silence_hours: float = Field(default=24, gt=0)
    webhook_signature_failures: int = Field(default=10, ge=1)

    # Worker
    worker_embedded: bool = True
    worker_batch_size: int = Field(default=1000, ge=1, le=5000)
    worker_threads: int = Field(default=2, ge=1, le=8)
    worker_poll_seconds: float = Field(default=0.5, gt=0)
    worker_gather_seconds: float = Field(default=0.5, ge=0, le=5)
    worker_max_attempts: int = Field(default=8, ge=1)

    # Slack
    slack_bot_token: SecretStr | None = None
    slack_signing_secret: SecretStr | None = None
    slack_app_token: SecretStr | None = None
    slack_api_url: str = "https://slack.com/api/"
    slack_alert_channel: str | None = None
    slack_channel_payment_failed: str | None = None
    slack_channel_cancellation: str | None = None
    slack_channel_upgrade: str | None = None
    slack_channel_trial: str | None = None
    slack_channel_refund: str | None = None
    slack_channel_digest: str | None = None
    # Alerts: the smallest amount worth an alert, per route, in minor units of the event's own
    # currency (no conversion; 0 = every event). See README "Slack alerts".
    slack_min_amount_payment_failed: int = Field(default=0, ge=0)
    slack_min_amount_cancellation: int = Field(default=0, ge=0)
    slack_min_amount_upgrade: int = Field(default=0, ge=0)
    slack_min_amount_trial: int = Field(default=0, ge=0)
    slack_min_amount_refund: int = Field(default=0, ge=0)
    # Outbox sender: pacing per channel, storm collapsing, retries
    slack_channel_interval_seconds: float = Field(default=1.0, ge=0)
    slack_storm_threshold: int = Field(default=5, ge=1)
    slack_storm_window_seconds: float = Field(default=60.0, gt=0)
    # With the backoff capped at 5 minutes, 300 tries last about a day: Slack outages last
    # hours, and an alert that arrives late is better than one that never arrives.
    slack_sender_max_attempts: int = Field(default=300, ge=1)
    slack_allowed_users: CommaList = Field(default_factory=list)
    slack_allowed_channels: CommaList = Field(default_factory=list)

    # Scheduling and presentation
    billbot_timezone: str = "UTC"
    billbot_reminder_time: time = time(9, 0)
    billbot_trial_window_days: int = Field(default=3, ge=1, le=60)
    # Scheduled jobs (docs/scheduling.md)
    scheduler_embedded: bool = True
    job_grace_seconds: int = Field(default=6 * 3600, ge=0)
    digest_frequency: Literal["daily", "weekly"] = "weekly"
    digest_time: time = time(9, 0)
    digest_weekday: Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"] = "mon"
    reconcile_time: time = time(3, 0)
    inbox_retention_days: int = Field(default=90, ge=0)
    outbox_retention_days: int = Field(default=30, ge=0)
    job_history_retention_days: int = Field(default=90, ge=1)

    # Revenue
    reporting_currency: str = "usd"
    revenue_churn_at: Literal["request", "period_end"] = "request"
    revenue_discounts: CommaList = Field(default_factory=lambda: ["forever"])
    fx_rates: Annotated[dict[str, Decimal], NoDecode] = Field(default_factory=dict)
    fx_rates_file: Path | None = None

    @field_validator(
        "stripe_webhook_secret",
        "slack_allowed_users",
        "slack_allowed_channels",
        "revenue_discounts",
        mode="before",
    )
    @classmethod
    def _comma_list(cls, value: object) -> object:
        return _split_commas(value)

    @field_validator("stripe_webhook_secret")
    @classmethod
    def _whsec(cls, secrets: list[str]) -> list[str]:
        for secret in secrets:
            if not secret.startswith("whsec_"):
                raise ValueError("each STRIPE_WEBHOOK_SECRET entry must start with 'whsec_'")
        return secrets

    @field_validator("billbot_timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)"
            ) from exc
        return name

    @field_validator("inbox_retention_days")
    @classmethod
    def _inbox_retention(cls, days: int) -> int:
        if 0 < days <= 30:
            raise ValueError(
                "keep inbox events longer than Stripe's 30-day event window (31 or more), "
                "or 0 to keep them forever"
            )
        return days

    @field_validator("digest_weekday", mode="before")
    @classmethod
    def _weekday(cls, value: object) -> object:
        return value.strip().lower()[:3] if isinstance(value, str) else value

    @field_validator("reporting_currency")
    @classmethod
    def _lower_currency(cls, code: str) -> str:
        return code.strip().lower()

    @field_validator("revenue_discounts")
    @classmethod
    def _discount_durations(cls, durations: list[str]) -> list[str]:
        durations = [duration.lower() for duration in durations]
        unknown = sorted(set(durations) - {"forever", "repeating", "once"})
        if unknown:
            raise ValueError(
                f"unknown discount duration {', '.join(unknown)} (use forever, repeating, once)"
            )
        return durations

    @field_validator("fx_rates", mode="before")
    @classmethod
    def _fx_rates(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_fx_rates(value)
        return value

    @cached_property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.billbot_timezone)

    @property
    def slack_enabled(self) -> bool:
        """Console mode when false: what would be posted is logged instead."""
        return self.slack_bot_token is not None and bool(self.slack_bot_token.get_secret_value())

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def parse_fx_rates(text: str) -> dict[str, Decimal]:
    """`"eur=1.08,gbp=1.27"`: one unit of each currency in the reporting currency."""
    rates: dict[str, Decimal] = {}
    for part in (piece.strip() for piece in text.split(",")):
        if not part:
            continue
        code, _, number = part.partition("=")
        code = code.strip().lower()
        try:
            rate = Decimal(number.strip())
        except InvalidOperation:
            rate = Decimal(0)
        if len(code) != 3 or not code.isalpha() or not rate.is_finite() or rate <= 0:
            raise ValueError(f"{part!r} is not CODE=RATE with a positive rate, e.g. eur=1.08")
        rates[code] = rate
    return rates

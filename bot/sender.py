"""The outbox sender: delivers queued Slack messages, paced, retried, never lost, never doubled.

- Per channel, at most one message every `SLACK_CHANNEL_INTERVAL_SECONDS` (Slack allows
  about one a second). A 429 blocks that channel for its `Retry-After`; 5xx answers and
  network errors are retried with exponential backoff, up to `SLACK_SENDER_MAX_ATTEMPTS`;
  other Slack errors (`channel_not_found`, `invalid_blocks`) fail the row at once, with the
  error kept in `last_error`.
- A row is claimed with a lease before the call, and the `ts` Slack returns is recorded in
  the next transaction, before anything else happens. Updates and thread replies of an
  alert wait until its post has a `ts`. If the database is lost at that moment, the sender
  keeps the `ts` in memory and records it first thing once the database answers again,
  before it sends anything else. What is not delivered stays in the table and is picked up
  by the next sender, after a restart too. The one window for a duplicate is a crash
  between Slack accepting a post and that record (or a database outage longer than the
  lease, when another sender process may take the row).
- Storms: when more than `SLACK_STORM_THRESHOLD` alert posts of one kind are waiting for a
  channel within `SLACK_STORM_WINDOW_SECONDS`, they are replaced by one summary message;
  their later updates are dropped and their thread replies go to the summary's thread.
- Console mode (no `SLACK_BOT_TOKEN`): each message is written to the log as readable text
  and marked sent.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from http.client import HTTPException
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.settings import Settings
from bot.storm import collapse_storm
from handlers.slack import mrkdwn
from storage import outbox
from storage.alerts import alerts_by_ids, record_alert_message
from storage.db import read_scope, session_scope
from storage.models.alerts import Alert
from storage.models.outbox import Operation, OutboxMessage, OutboxStatus
from storage.types import utcnow

logger = logging.getLogger(__name__)
console_logger = logging.getLogger("billbot.console")

RATE_LIMITED = frozenset({"ratelimited", "rate_limited"})
TRANSIENT = frozenset(
    {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "team_added_to_org"}
)


@dataclass(frozen=True, slots=True)
class SenderConfig:
    channel_interval: float = 1.0
    storm_threshold: int = 5
    storm_window: float = 60.0
    max_attempts: int = 300  # about a day with the 5-minute cap: Slack outages last hours
    lease: float = 60.0
    backoff_base: float = 2.0
    backoff_cap: float = 300.0
    poll: float = 0.5

    @classmethod
    def from_settings(cls, settings: Settings) -> SenderConfig:
        return cls(
            channel_interval=settings.slack_channel_interval_seconds,
            storm_threshold=settings.slack_storm_threshold,
            storm_window=settings.slack_storm_window_seconds,
            max_attempts=settings.slack_sender_max_attempts,
        )


class Sender:
    def __init__(
        self,
        *,
        engine: Engine,
        client: WebClient | None,
        config: SenderConfig | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine, self.client, self.config, self.clock = (
            engine,
            client,
            config or SenderConfig(),
            clock,
        )
        self._ready_at: dict[str, datetime] = {}  # per channel: pacing and Retry-After
        # Delivered, but the database failed before it could record the `ts` (oldest first).
        self._unrecorded: list[tuple[OutboxMessage, str | None, str | None]] = []

    def step(self) -> float:
        """Send at most one due message per channel; return seconds until more may be due."""
        self._record_unrecorded()
        now = self.clock()
        with read_scope(self.engine) as session:
            due = outbox.due_messages(session=session, now=now)
            alerts = {
                a.id: a
                for a in alerts_by_ids(
                    session=session, alert_ids=[m.alert_id for m in due if m.alert_id]
                )
            }
            next_retry = outbox.next_due_at(session=session)
            session.expunge_all()  # detached, with their values, past the read-only scope
        waits = [self.config.poll]
        for channel, messages in _by_channel(due).items():
            ready_at = self._ready_at.get(channel, now)
            if ready_at > now:
                waits.append((ready_at - now).total_seconds())
                continue
            message = self._first_deliverable(messages, alerts)
            if message is not None:
                self._deliver(message, alerts.get(message.alert_id or 0), now)
                waits.append(
                    self.config.channel_interval if len(messages) > 1 else self.config.poll
                )
        if next_retry is not None and next_retry > now:
            waits.append((next_retry - now).total_seconds())
        return max(0.0, min(waits))

    def run(self, stop: threading.Event) -> None:
        logger.info("slack.sender.started", extra={"console": self.client is None})
        while not stop.is_set():
            try:
                wait = self.step()
            except SQLAlchemyError:
                logger.exception("slack.sender.database_error")
                wait = self.config.poll * 4
            stop.wait(min(wait, self.config.poll) if wait > 0 else 0.01)
        logger.info("slack.sender.stopped")

    # -- choosing what to send ---------------------------------------------------------------

    def _first_deliverable(
        self, messages: list[OutboxMessage], alerts: dict[int, Alert]
    ) -> OutboxMessage | None:
        for message in messages:
            if message.operation in (Operation.UPDATE, Operation.REPLY) and not self._parent_ready(
                message, alerts
            ):
                continue
            if message.operation == Operation.POST and message.alert_id is not None:
                return self._maybe_collapse(message) or message
            return message
        return None

    def _parent_ready(self, message: OutboxMessage, alerts: dict[int, Alert]) -> bool:
        """Updates and replies need their alert's ts; updates of a collapsed alert are dropped."""
        alert = alerts.get(message.alert_id or 0)
        if alert is not None and alert.message_ts is not None:
            if message.operation == Operation.UPDATE and alert.collapsed:
                self._settle(message, OutboxStatus.SUPERSEDED, "alert is part of a storm summary")
                return False
            return True
        with read_scope(self.engine) as session:
            post = (
                outbox.alert_post(session=session, alert_id=message.alert_id)
                if message.alert_id
                else None
            )
            session.expunge_all()
        if post is None or post.status == OutboxStatus.FAILED:
            self._settle(message, OutboxStatus.FAILED, "the alert's own message was never posted")
        return False

    def _maybe_collapse(self, message: OutboxMessage) -> OutboxMessage | None:
        """A storm summary in place of the waiting posts of this kind, or None if calm."""
        return collapse_storm(
            self.engine,
            channel=message.channel,
            kind=message.kind,
            threshold=self.config.storm_threshold,
            window=self.config.storm_window,
            now=self.clock(),
        )

    # -- sending -------------------------------------------------------------------------

    def _deliver(self, message: OutboxMessage, alert: Alert | None, now: datetime) -> None:
        with session_scope(self.engine) as session:
            if not outbox.claim(
                session=session,
                message_id=message.id,
                now=now,
                lease=timedelta(seconds=self.config.lease),
            ):
                return
        self._ready_at[message.channel] = now + timedelta(seconds=self.config.channel_interval)
        try:
            channel, ts = self._call(message, alert)
        except SlackApiError as error:
            self._failed_call(
                message,
                now,
                status=error.response.status_code,
                error=str(error.response.get("error")),
                headers=error.response.headers,
            )
        except (
            OSError,
            HTTPException,
            ValueError,
        ) as error:  # network trouble, or a body that is not JSON
            self._failed_call(message, now, status=None, error=type(error).__name__, headers={})
        else:
            self._record(message, channel, ts)

    def _call(self, message: OutboxMessage, alert: Alert | None) -> tuple[str | None, str | None]:
        payload = message.payload
        if self.client is None:
            console_logger.info(
                mrkdwn.plain_rendering(
                    payload, channel=message.channel, operation=message.operation
                )
            )
            return message.channel, f"console.{message.id}"
        common: dict[str, Any] = {"text": payload.get("text", ""), "blocks": payload.get("blocks")}
        if message.operation == Operation.UPDATE and alert is not None:
            response = self.client.chat_update(
                channel=alert.message_channel, ts=alert.message_ts, **common
            )
        elif message.operation == Operation.REPLY and alert is not None:
            response = self.client.chat_postMessage(
                channel=alert.message_channel,
                thread_ts=alert.message_ts,
                unfurl_links=False,
                unfurl_media=False,
                **common,
            )
        else:
            response = self.client.chat_postMessage(
                channel=message.channel, unfurl_links=False, unfurl_media=False, **common
            )
        return response.get("channel"), response.get("ts")

    def _record_unrecorded(self) -> None:
        """Record what was delivered while the database was away; raises while it still is."""
        while self._unrecorded:
            self._write_record(*self._unrecorded[0])
            self._unrecorded.pop(0)

    def _record(self, message: OutboxMessage, channel: str | None, ts: str | None) -> None:
        try:
            self._write_record(message, channel, ts)
        except SQLAlchemyError:
            self._unrecorded.append((message, channel, ts))  # Slack has it: never send it again
            raise

    def _write_record(self, message: OutboxMessage, channel: str | None, ts: str | None) -> None:
        now = self.clock()
        with session_scope(self.engine) as session:
            outbox.mark_sent(
                session=session, message_id=message.id, channel=channel, ts=ts, now=now
            )
            if message.operation == Operation.POST and message.alert_id is not None:
                record_alert_message(
                    session=session,
                    alert_ids=[message.alert_id],
                    channel=channel or message.channel,
                    ts=ts or "",
                    collapsed=False,
                    now=now,
                )
            elif message.operation == Operation.SUMMARY:
                ids = outbox.collapsed_alert_ids(session=session, summary_id=message.id)
                record_alert_message(
                    session=session,
                    alert_ids=ids,
                    channel=channel or message.channel,
                    ts=ts or "",
                    collapsed=True,
                    now=now,
                )
        logger.info(
            "slack.outbox.sent",
            extra={
                "outbox_id": message.id,
                "operation": message.operation,
                "alert_id": message.alert_id,
            },
        )

    def _failed_call(
        self, message: OutboxMessage, now: datetime, *, status: int | None, error: str, headers: Any
    ) -> None:
        log = {
            "outbox_id": message.id,
            "status": status,
            "error": error,
            "channel": message.channel,
        }
        if status == 429 or error in RATE_LIMITED:
            retry_after = _retry_after(headers)
            self._ready_at[message.channel] = now + timedelta(seconds=retry_after)
            with session_scope(self.engine) as session:
                outbox.mark_retry(
                    session=session,
                    message_id=message.id,
                    error=f"429 {error}",
                    at=now + timedelta(seconds=retry_after),
                    count_attempt=False,
                )
            logger.warning("slack.outbox.rate_limited", extra={**log, "retry_after": retry_after})
        elif status is None or status >= 500 or error in TRANSIENT:
            attempts = message.attempts + 1
            if attempts >= self.config.max_attempts:
                self._settle(
                    message, OutboxStatus.FAILED, f"gave up after {attempts} attempts: {error}"
                )
                logger.error("slack.outbox.gave_up", extra=log)
                return
            delay = min(self.config.backoff_cap, self.config.backoff_base * 2 ** (attempts - 1))
            with session_scope(self.engine) as session:
                outbox.mark_retry(
                    session=session,
                    message_id=message.id,
                    error=f"{status} {error}",
                    at=now + timedelta(seconds=delay),
                    count_attempt=True,
                )
            logger.warning("slack.outbox.retry", extra={**log, "delay": delay})
        else:
            self._settle(message, OutboxStatus.FAILED, error)
            logger.error("slack.outbox.failed", extra=log)

    def _settle(self, message: OutboxMessage, status: OutboxStatus, error: str) -> None:
        with session_scope(self.engine) as session:
            outbox.mark_failed(session=session, message_id=message.id, error=error, status=status)


def _by_channel(messages: list[OutboxMessage]) -> dict[str, list[OutboxMessage]]:
    grouped: dict[str, list[OutboxMessage]] = {}
    for message in messages:
        grouped.setdefault(message.channel, []).append(message)
    return grouped


def _retry_after(headers: Any) -> float:
    for key, value in dict(headers or {}).items():
        if key.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return max(1.0, float(raw))
            except (TypeError, ValueError):
                break
    return 1.0


def run_sender(
    settings: Settings,
    *,
    engine: Engine,
    stop: threading.Event,
    client: WebClient | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> None:
    """Thread entry for the web app's lifespan: `Thread(target=run_sender, kwargs=...)`; set
    `stop` to end it. Without a bot token (and no client given), runs in console mode."""
    if client is None and settings.slack_enabled:
        from bot.slack_app import make_web_client

        client = make_web_client(settings, retries=False)
    Sender(
        engine=engine, client=client, config=SenderConfig.from_settings(settings), clock=clock
    ).run(stop)

"""Calling Stripe's API politely: at most N requests in any one second, and back off on 429.

Stripe allows 100 read operations per second in live mode and 25 in test mode (sandboxes),
and answers `429 Too Many Requests` beyond that. The backfill reads one page at a time, so
it never runs requests in parallel; the `Pacer` keeps it under the per-second limit and
retries what Stripe says is worth retrying:

- 429: wait for `Retry-After` when Stripe sends it, else back off exponentially
  (1 s, 2 s, 4 s ... up to 30 s), up to `max_attempts` tries.
- 5xx, 409 and dropped connections: the same backoff, same limit.
- `Stripe-Should-Retry: false` always wins: the error is raised at once.
- Anything else (a bad key, a bad parameter) is raised at once.

The clock and the sleep are passed in, so tests run on a simulated clock and assert the
sleeps that were asked for instead of waiting for them. The stripe client itself is built
with `max_network_retries=0` for this path, so every wait happens here, visibly.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

import stripe

logger = logging.getLogger(__name__)

T = TypeVar("T")

LIVE_REQUESTS_PER_SECOND = 100
TEST_REQUESTS_PER_SECOND = 25
MIN_SLEEP = 0.001  # never ask for a sleep too small to move a float clock forward


def requests_per_second_for(api_key: str) -> int:
    """Stripe's documented per-second limit for the key's mode (test keys: sk_test_, rk_test_)."""
    return TEST_REQUESTS_PER_SECOND if "_test_" in api_key else LIVE_REQUESTS_PER_SECOND


@dataclass
class Pacer:
    max_per_second: int
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    max_attempts: int = 8
    base_delay: float = 1.0
    max_delay: float = 30.0
    requests: int = 0
    retries: int = 0
    _recent: deque[float] = field(default_factory=deque, repr=False)

    def call(self, request: Callable[[], T]) -> T:
        """Run `request` (one HTTP call) when the rate allows, retrying what may be retried."""
        attempt = 0
        while True:
            self._wait_for_turn()
            try:
                return request()
            except stripe.StripeError as exc:
                attempt += 1
                delay = self.retry_delay(exc, attempt)
                if delay is None:
                    raise
                self.retries += 1
                logger.warning(
                    "stripe.request.retry",
                    extra={"status": exc.http_status, "attempt": attempt, "delay": delay},
                )
                self.sleep(delay)

    def retry_delay(self, exc: stripe.StripeError, attempt: int) -> float | None:
        """Seconds to wait before trying again, or None to give up."""
        if attempt >= self.max_attempts or not _retryable(exc):
            return None
        should_retry = _header(exc.headers, "stripe-should-retry")
        if should_retry == "false":
            return None
        retry_after = _seconds(_header(exc.headers, "retry-after"))
        if retry_after is not None:
            return max(retry_after, MIN_SLEEP)
        return min(self.base_delay * 2 ** (attempt - 1), self.max_delay)

    def _wait_for_turn(self) -> None:
        # A sliding one-second window: the (N+1)th request waits until the first of the
        # last N is a full second old, so no second ever holds more than N requests.
        now = self.clock()
        while len(self._recent) >= self.max_per_second:
            wait = self._recent[0] + 1.0 - now
            if wait <= 0:
                self._recent.popleft()
                continue
            self.sleep(max(wait, MIN_SLEEP))
            now = self.clock()
        self._recent.append(now)
        self.requests += 1


def _retryable(exc: stripe.StripeError) -> bool:
    if isinstance(exc, stripe.APIConnectionError):
        return True  # we only read (GET), so repeating a dropped request is always safe
    status = exc.http_status or 0
    return status == 429 or status == 409 or status >= 500


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return str(value).strip().lower()
    return None


def _seconds(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date; Stripe sends seconds, so fall back to our own backoff
    return seconds if seconds >= 0 else None

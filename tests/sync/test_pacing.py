"""Rate pacing and retry decisions, on a simulated clock (no test here waits for real time)."""

from __future__ import annotations

from collections import Counter

import pytest
import stripe

from handlers.sync.backfill import Backfill
from handlers.sync.pacing import Pacer, requests_per_second_for
from tests.fakes import stripe_objects as so


def per_second(times: list[float]) -> Counter[int]:
    return Counter(int(t // 1) for t in times)


@pytest.mark.parametrize("limit", [25, 100])
def test_no_second_holds_more_requests_than_the_limit(clock, limit):
    pacer = Pacer(max_per_second=limit, clock=clock, sleep=clock.sleep)
    started: list[float] = []
    for _ in range(limit * 3 + 7):
        pacer.call(lambda: started.append(clock()))

    counts = per_second(started)
    assert max(counts.values()) == limit
    assert len(counts) == 4  # 3 full seconds and the 7 left over
    assert sum(clock.sleeps) == pytest.approx(3.0)


def test_requests_spread_over_time_never_wait(clock):
    pacer = Pacer(max_per_second=25, clock=clock, sleep=clock.sleep)
    for _ in range(50):
        pacer.call(lambda: None)
        clock.seconds += 0.05  # the requests themselves take time: 20 per second
    assert clock.sleeps == []


def test_a_whole_backfill_stays_within_the_test_mode_limit(
    sqlite_engine, client, clock, stand_in, recorder
):
    stand_in.add("customers", *[so.customer(n, created=so.EPOCH + n) for n in range(80)])
    pacer = Pacer(
        max_per_second=requests_per_second_for("sk_test_x"), clock=clock, sleep=clock.sleep
    )
    backfill = Backfill(
        engine=sqlite_engine,
        client=client,
        pacer=pacer,
        apply_object=recorder,
        now=clock.now,
        page_size=1,
    )

    [result] = backfill.run(only=["customers"])

    assert result.fetched == 80
    counts = per_second(
        [r.at for r in stand_in.requests]
    )  # stamped by the stand-in with the same clock
    assert sum(counts.values()) == 80  # pages of one; the last one says has_more=false
    assert max(counts.values()) == 25
    assert len(clock.sleeps) == 3  # one wait after each full second


def test_key_mode_decides_the_rate():
    assert requests_per_second_for("sk_test_abc") == 25
    assert requests_per_second_for("rk_test_abc") == 25
    assert requests_per_second_for("sk_live_abc") == 100
    assert requests_per_second_for("rk_live_abc") == 100


def error(cls, status, headers=None):
    return cls("boom", http_status=status, headers=headers or {})


@pytest.mark.parametrize(
    ("exc", "attempt", "expected"),
    [
        (error(stripe.RateLimitError, 429, {"Retry-After": "7"}), 1, 7.0),
        (error(stripe.RateLimitError, 429, {"retry-after": "0"}), 1, 0.001),
        (error(stripe.RateLimitError, 429), 3, 4.0),
        (error(stripe.RateLimitError, 429), 7, 30.0),  # capped
        (
            error(stripe.RateLimitError, 429, {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
            2,
            2.0,
        ),
        (error(stripe.RateLimitError, 429, {"Stripe-Should-Retry": "false"}), 1, None),
        (error(stripe.APIError, 500), 1, 1.0),
        (error(stripe.APIError, 500, {"Stripe-Should-Retry": "false"}), 1, None),
        (error(stripe.APIError, 409), 1, 1.0),
        (stripe.APIConnectionError("reset"), 2, 2.0),
        (stripe.InvalidRequestError("bad limit", "limit", http_status=400), 1, None),
        (error(stripe.AuthenticationError, 401), 1, None),
        (error(stripe.RateLimitError, 429), 8, None),  # out of attempts
    ],
)
def test_retry_delay(exc, attempt, expected):
    assert Pacer(max_per_second=25).retry_delay(exc, attempt) == expected

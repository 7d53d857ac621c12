"""Outages at both edges, with the whole app running.

Slack: the stand-in answers 500s, then 429 with Retry-After, while alerts pile up, and the app
is restarted in the middle of it. Every alert is delivered once afterwards. The app's clock is
a controllable one, so the sender's backoff and Retry-After waits pass without sleeping.

PostgreSQL: billbot's engine points at a port that goes dark (a loopback forwarder switched
off) and comes back at the same address. Webhooks answer 503 meanwhile (nothing stored), and
Stripe's retry of the same event is accepted and applied by the embedded worker, which lived
through the outage.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.engine import make_url

from storage.db import make_engine, read_scope
from storage.models import Alert, OutboxMessage, OutboxStatus
from storage.models.inbox import StripeEvent as InboxEvent
from storage.models.outbox import Operation
from tests.e2e import story as life
from tests.e2e.harness import (
    BOT_TOKEN,
    chat_calls,
    inbox_statuses,
    outbox_statuses,
    pending_outbox,
    running_billbot,
    stored_alerts,
    wait_until,
)
from tests.e2e.tcp_proxy import TcpProxy
from tests.factories import NEW, OLD
from tests.fakes.slack_api import FakeSlackApi

BEFORE_THE_OUTAGE = (
    "signup",
    "trial",
    "trial_will_end",
    "converted",
    "upgrade",
    "failed_1",
    "failed_2",
)


class FakeClock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def move_to(self, moment: datetime) -> None:
        self.now = max(self.now, moment)


def blocked_until(engine, now: datetime) -> datetime | None:
    """When the sender has done all it can at `now`: the next moment something is due.
    None while something is deliverable (or being delivered) now. A 429 blocks its whole
    channel until its Retry-After has passed."""
    with read_scope(engine) as session:
        rows = list(
            session.execute(
                select(OutboxMessage).where(OutboxMessage.status == OutboxStatus.PENDING)
            ).scalars()
        )
        posted = {a.id for a in session.execute(select(Alert)).scalars() if a.message_ts}
        session.expunge_all()
    posts_due = {r.alert_id: r.next_attempt_at for r in rows if r.operation == Operation.POST}
    rate_limited: dict[str, datetime] = {}
    for r in rows:
        if (r.last_error or "").startswith("429") and r.next_attempt_at and r.next_attempt_at > now:
            rate_limited[r.channel] = max(r.next_attempt_at, rate_limited.get(r.channel, now))
    times = []
    for row in rows:
        if row.claimed_until is not None and row.claimed_until > now:
            return None  # in flight
        if row.next_attempt_at is not None and row.next_attempt_at > now:
            times.append(row.next_attempt_at)
        elif row.channel in rate_limited:
            times.append(rate_limited[row.channel])
        elif row.operation in (Operation.UPDATE, Operation.REPLY) and row.alert_id not in posted:
            waiting_post = posts_due.get(row.alert_id)
            if waiting_post is None or waiting_post <= now:
                return None
            times.append(waiting_post)  # waits for its alert's post, which waits for a retry
        else:
            return None
    return min(times) if times else now  # nothing left: nothing to wait for


def let_time_pass_until_delivered(bot, clock: FakeClock) -> None:
    while pending_outbox(bot.engine):
        until = wait_until(
            lambda: blocked_until(bot.engine, clock()), what="the sender to be waiting"
        )
        clock.move_to(until + timedelta(milliseconds=1))


def failures(slack: FakeSlackApi) -> list[int]:
    return [c.status for c in slack.calls if c.status != 200]


def test_slack_down_then_rate_limited_then_a_restart_loses_nothing_and_posts_once(engine):
    story = life.customer_life(OLD)
    clock = FakeClock()
    with FakeSlackApi(token=BOT_TOKEN) as slack:
        slack.fail("chat.postMessage", status=500, error="internal_error", times=2)
        slack.fail("chat.postMessage", status=503, error="service_unavailable")
        slack.fail("chat.postMessage", status=429, error="ratelimited", retry_after=30, times=2)
        with running_billbot(engine, slack=slack, clock=clock) as bot:
            for name in BEFORE_THE_OUTAGE:
                bot.deliver_all(story.step(name).events)  # Stripe is answered whatever Slack does
                bot.apply()
            wait_until(lambda: len(failures(slack)) >= 2, what="two failed posts")
        # restarted while Slack still fails: what was not delivered is still in the outbox
        assert pending_outbox(engine) == 6 - len([c for c in slack.calls if c.status == 200])
        with running_billbot(engine, slack=slack, clock=clock) as bot:
            let_time_pass_until_delivered(bot, clock)
            calls = chat_calls(slack)

    assert failures(slack) == [500, 500, 503, 429, 429]
    assert outbox_statuses(engine) == {OutboxStatus.SENT: 6}
    posts = [c for c in calls if c.method == "post"]
    alerts = stored_alerts(engine)
    assert sorted(c.ts for c in posts) == sorted(a.message_ts for a in alerts)  # each alert once
    assert [a.kind for a in alerts] == [
        "trial_ending",
        "trial_converted",
        "upgrade",
        "payment_failed",
    ]
    [failed] = [c for c in posts if c.channel == slack.channel_id("#collections")]
    thread = [(c.method, c.ts) for c in calls if c.method != "post"]
    assert sorted(thread) == [("reply", failed.ts), ("update", failed.ts)]
    assert "attempt 2" in slack.messages[failed.channel][failed.ts]["text"]


def test_database_down_answers_503_and_stripe_retry_is_accepted_once_it_is_back(postgres_url):
    url = make_url(postgres_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    proxy.up()
    engine = make_engine(url.set(port=proxy.port).render_as_string(hide_password=False))
    story = life.customer_life(NEW)
    before = [
        e for name in ("signup", "trial", "converted", "upgrade") for e in story.step(name).events
    ]
    failed = story.step("failed_1").events
    try:
        with running_billbot(engine, worker_embedded=True, worker_poll_seconds=0.05) as bot:
            bot.deliver_all(before)
            wait_until(
                lambda: inbox_statuses(engine) == {"applied": len(before)}, what="events applied"
            )

            proxy.down()
            refused = [bot.deliver(event) for event in failed]
            assert [r.status_code for r in refused] == [503] * len(failed)
            assert all("retry" in r.json()["error"] for r in refused)
            assert bot.http.get("/healthz").status_code == 503

            proxy.up()
            wait_until(lambda: bot.http.get("/healthz").status_code == 200, what="healthz")
            retried = bot.deliver_all(failed)  # Stripe's retry: the same events, signed anew
            assert all(r.json() == {"received": True} for r in retried)  # new, not duplicates
            total = len(before) + len(failed)
            wait_until(
                lambda: inbox_statuses(engine) == {"applied": total},
                what="the retried events applied",
            )
            bot.settle()
            posts = [c for c in chat_calls(bot.slack) if c.method == "post"]
        assert [p.text.split(":")[0] for p in posts] == [
            "Trial converted to paid",
            "Upgrade",
            "Payment failed",
        ]
        with read_scope(engine) as session:
            ids = session.execute(select(InboxEvent.id)).scalars().all()
        assert sorted(ids) == sorted(e["id"] for e in before + failed)
    finally:
        proxy.down()
        engine.dispose()


def test_a_long_slack_outage_still_delivers_the_alert_afterwards(sqlite_engine):
    """Slack's incidents last hours, not minutes: alerts waiting through one must still be
    posted when Slack is back (the sender's backoff caps at five minutes)."""
    story = life.customer_life(NEW)
    clock = FakeClock()
    went_down = clock()
    with FakeSlackApi(token=BOT_TOKEN) as slack:
        slack.fail("chat.postMessage", status=503, error="service_unavailable", times=12)
        with running_billbot(sqlite_engine, slack=slack, clock=clock) as bot:
            for name in ("signup", "trial", "converted"):
                bot.deliver_all(story.step(name).events)
            bot.apply()
            let_time_pass_until_delivered(bot, clock)  # one alert: "Trial converted to paid"
    assert failures(slack) == [503] * 12
    assert clock() - went_down > timedelta(minutes=20)  # ten tries used to end it at ~14 minutes
    assert outbox_statuses(sqlite_engine) == {OutboxStatus.SENT: 1}
    [post] = chat_calls(slack)
    assert post.method == "post" and post.text.startswith("Trial converted to paid: Grace Hopper")

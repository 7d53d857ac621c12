"""/revenue end to end: the immediate acknowledgement, then (in Bolt's lazy listener) the
summary through the response URL and the chart through Slack's external upload flow, all
received by the loopback Slack API; the ledger on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from handlers.revenue.ledger import record_customer_mrr
from handlers.slack import command_copy as words
from handlers.slack.commands import UserFacingError
from handlers.slack.commands_revenue import period_of
from storage.db import session_scope
from tests.revenue.factories import item, put_subscription
from tests.slack.command_requests import CHANNEL, slash, start_web, texts, wait_for
from tests.slack.conftest import make_settings

ME, OTHER = "U0ME", "U0OTHER"
NOW = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)  # the `clock` fixture's start


@pytest.fixture
def ledger(engine, clock):
    """$100 and $50 a month since October; a third customer, $30, joined in November."""
    with session_scope(engine) as session:
        for n, amount, since in (
            (1, 10000, datetime(2026, 10, 5, tzinfo=UTC)),
            (2, 5000, datetime(2026, 10, 6, tzinfo=UTC)),
            (3, 3000, datetime(2026, 11, 2, tzinfo=UTC)),
        ):
            put_subscription(session, f"sub_r{n}", customer_id=f"cus_r{n}", items=[item(amount)])
            record_customer_mrr(session, customer_id=f"cus_r{n}", at=since, event_id=f"evt_r{n}")


@pytest.fixture
def web(engine, settings, slack_api, clock):
    with start_web(engine, settings, slack_api, clock) as http:
        yield http


def shared_charts(slack_api):
    return slack_api.calls_to("files.completeUploadExternal")


def test_period_of():
    assert period_of("", now=NOW) is None
    assert period_of("  last   month ", now=NOW) == "last month"
    assert period_of("2026-03", now=NOW) == "2026-03"
    for bad in ("2026-13", "next year", "2027-01", "'; DROP TABLE mrr_movement; --", "x" * 5000):
        with pytest.raises(UserFacingError, match="Usage: `/revenue`"):
            period_of(bad, now=NOW)


def test_revenue_posts_the_summary_and_the_chart_in_the_channel(web, slack_api, ledger):
    response = slash(web, slack_api, "/revenue", "", user=ME)

    assert response.status_code == 200 and response.text == ""
    [complete] = wait_for(lambda: shared_charts(slack_api))
    [summary] = slack_api.responses()
    assert summary["response_type"] == "in_channel"
    shown = texts(summary)
    assert "Revenue · November 2026" in shown and "Month to date" in shown
    assert "*MRR*\n$180.00" in shown and "*Active customers*\n3" in shown
    assert "New: +$30.00 (1)" in shown
    [ticket] = slack_api.calls_to("files.getUploadURLExternal")
    assert ticket.params["filename"] == "mrr-2026-11.png"
    assert "now $180.00" in ticket.params["alt_txt"]
    [upload] = slack_api.calls_to("upload")
    assert upload.params["bytes"] == int(ticket.params["length"]) > 1000
    assert complete.params["channel_id"] == CHANNEL
    assert complete.json_param("files")[0]["title"] == "MRR, last 12 months (USD)"


def test_revenue_for_a_past_month(web, slack_api, ledger):
    slash(web, slack_api, "/revenue", "2026-10", user=ME)

    wait_for(lambda: shared_charts(slack_api))
    shown = texts(slack_api.responses()[0])
    assert "Revenue · October 2026" in shown and "Whole month" in shown
    assert "*MRR*\n$150.00" in shown and "New: +$150.00 (2)" in shown
    [ticket] = slack_api.calls_to("files.getUploadURLExternal")
    assert "now $150.00" in ticket.params["alt_txt"]


@pytest.mark.parametrize("text", ["2026-13", "next week", "2027-02", "<@U0OTHER|other>"])
def test_a_bad_period_gets_the_usage_and_nothing_else(web, slack_api, ledger, text):
    response = slash(web, slack_api, "/revenue", text, user=ME)
    assert response.status_code == 200 and words.REVENUE_USAGE in response.text
    slash(web, slack_api, "/revenue", "last month", user=ME)  # a good one, to wait for
    wait_for(lambda: shared_charts(slack_api))
    assert len(slack_api.responses()) == 1 and len(shared_charts(slack_api)) == 1


def test_when_the_chart_cannot_be_shared_the_asker_is_told_why(web, slack_api, ledger):
    slack_api.fail("files.completeUploadExternal", error="not_in_channel")
    slash(web, slack_api, "/revenue", "", user=ME)

    summary, apology = wait_for(lambda: len(slack_api.responses()) == 2 and slack_api.responses())
    assert summary["response_type"] == "in_channel"
    assert apology["response_type"] == "ephemeral"
    assert apology["text"] == words.REVENUE_CHART_FAILED.format(error="not_in_channel")


def test_revenue_is_posted_only_where_allowed(engine, slack_api, clock, ledger):
    settings = make_settings(slack_api, slack_allowed_users=ME, slack_allowed_channels="C0FINANCE")
    with start_web(engine, settings, slack_api, clock) as web:
        in_a_dm = slash(web, slack_api, "/revenue", "", user=ME, channel="D0ME")
        stranger = slash(web, slack_api, "/revenue", "", user=OTHER, channel="C0FINANCE")
        allowed = slash(web, slack_api, "/revenue", "", user=ME, channel="C0FINANCE")
        wait_for(lambda: shared_charts(slack_api))

    assert in_a_dm.text == words.POST_NOT_HERE.format(channels="<#C0FINANCE>")
    assert stranger.text == words.NOT_ALLOWED
    assert allowed.text == ""
    [complete] = shared_charts(slack_api)
    assert complete.params["channel_id"] == "C0FINANCE"
    assert len(slack_api.responses()) == 1


def test_an_unexpected_failure_is_logged_once_and_shown_as_a_reference(
    engine, slack_api, clock, ledger, caplog
):
    settings = make_settings(slack_api, fx_rates_file="/nonexistent/rates.json")
    with start_web(engine, settings, slack_api, clock) as web:
        slash(web, slack_api, "/revenue", "", user=ME)
        [answer] = wait_for(lambda: slack_api.responses())
    [logged] = [r for r in caplog.records if r.getMessage() == "slack.listener.failed"]
    assert answer["response_type"] == "ephemeral"
    assert answer["text"] == words.SOMETHING_WENT_WRONG.format(ref=logged.reference)
    assert shared_charts(slack_api) == []

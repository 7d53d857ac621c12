"""The App Home, end to end: a signed app_home_opened event through POST /slack/events, the
store on SQLite and PostgreSQL, and views.publish received by the loopback Slack API."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from handlers.revenue.ledger import record_customer_mrr
from handlers.slack import command_copy as words
from handlers.slack.command_ids import CommandAction, TaskRef, TaskScope
from storage.db import session_scope
from storage.models import Alert
from storage.tasks import create_task
from tests.revenue.factories import item, put_subscription
from tests.slack.command_requests import home_opened, start_web, texts
from tests.slack.conftest import make_settings
from tests.slack.factories import failed_payment

ME, OTHER = "U0ME", "U0OTHER"


@pytest.fixture
def web(engine, settings, slack_api, clock):
    with start_web(engine, settings, slack_api, clock) as http:
        yield http


def paying_customers(engine, clock) -> None:
    """Two customers on $100 and $50 a month: MRR $150, two active customers."""
    with session_scope(engine) as session:
        for n, amount in ((1, 10000), (2, 5000)):
            put_subscription(session, f"sub_p{n}", customer_id=f"cus_p{n}", items=[item(amount)])
            record_customer_mrr(
                session,
                customer_id=f"cus_p{n}",
                at=clock() - timedelta(days=3),
                event_id=f"evt_p{n}",
            )


def task(engine, clock, *, title, assignee=ME, alert_id=None, customer="cus_1"):
    with session_scope(engine) as session:
        return create_task(
            session=session,
            customer_id=customer,
            alert_id=alert_id,
            title=title,
            note=None,
            assignee=assignee,
            creator=OTHER,
            due_date=date(2026, 12, 1),
            now=clock(),
        ).id


def set_alert(engine, alert_id: int, **values) -> None:
    with session_scope(engine) as session:
        alert = session.get(Alert, alert_id)
        for key, value in values.items():
            setattr(alert, key, value)
        session.add(alert)


def published(slack_api) -> list[dict]:
    return [call.json_param("view") for call in slack_api.calls_to("views.publish")]


def test_home_shows_the_headline_my_tasks_and_the_latest_alerts_with_their_state(
    web, engine, settings, slack_api, clock
):
    paying_customers(engine, clock)
    for n in range(1, 5):
        failed_payment(engine, settings, n)
    first, second, third, fourth = range(1, 5)
    task(engine, clock, title="Call customer 2", alert_id=second, assignee=OTHER)
    set_alert(engine, third, state="handled", handled_by=OTHER, handled_at=clock())
    set_alert(engine, fourth, state="recovered", recovered_at=clock())
    task(engine, clock, title="My own follow-up")
    task(engine, clock, title="Someone else's", assignee=OTHER)

    response = home_opened(web, user=ME)

    assert response.status_code == 200
    [view] = published(slack_api)
    assert view["type"] == "home"
    shown = texts(view)
    assert "*MRR* $150.00/mo" in shown and "*Active customers* 2" in shown
    assert "Your open follow-ups (1)" in shown
    assert "My own follow-up" in shown and "Someone else's" not in shown
    lines = [b["text"]["text"] for b in view["blocks"] if "Payment " in str(b.get("text"))]
    assert len(lines) == 4
    states = {line.split("\n")[0].split(": ")[1].split(" · ")[0]: line for line in lines}
    assert words.ALERT_STATE["open"] in states["Customer 1"]
    assert f"task for <@{OTHER}>" in states["Customer 2"]
    assert f"handled by <@{OTHER}>" in states["Customer 3"]
    assert ":moneybag: recovered" in states["Customer 4"]
    assert "<!date^" in shown  # times as Slack date tokens
    controls = [b for b in view["blocks"] if b["type"] == "actions"]
    assert [TaskRef.decode(b["block_id"]).scope for b in controls] == [TaskScope.HOME]
    assert {e["action_id"] for e in controls[0]["elements"]} == {
        CommandAction.TASK_DONE,
        CommandAction.TASK_REASSIGN,
    }
    assert len(view["blocks"]) <= 100


def test_home_refreshes_each_time_it_is_opened_and_ignores_the_messages_tab(
    web, engine, slack_api, clock
):
    home_opened(web, user=ME)
    task(engine, clock, title="New follow-up")
    home_opened(web, user=ME, tab="messages")
    home_opened(web, user=ME)

    before, after = published(slack_api)
    assert words.HOME_NO_TASKS in texts(before) and words.HOME_NO_ALERTS in texts(before)
    assert "New follow-up" in texts(after)


def test_home_for_someone_not_allowed_is_a_notice_and_nothing_else(
    engine, settings, slack_api, clock
):
    paying_customers(engine, clock)
    failed_payment(engine, settings, 1)
    task(engine, clock, title="Secret follow-up", assignee=OTHER)
    allowed_users = make_settings(slack_api, slack_allowed_users=ME)
    only_channels = make_settings(slack_api, slack_allowed_channels="C0FINANCE")
    for config in (allowed_users, only_channels):
        with start_web(engine, config, slack_api, clock) as web:
            home_opened(web, user=OTHER)

    refused, refused_outside_channel = published(slack_api)
    assert [b["type"] for b in refused["blocks"]] == ["section"]
    assert refused["blocks"][0]["text"]["text"] == ":lock: " + words.NOT_ALLOWED
    assert "<#C0FINANCE>" in texts(refused_outside_channel)
    for view in (refused, refused_outside_channel):
        assert "$" not in texts(view) and "Customer" not in texts(view)


def test_home_for_a_listed_user_works_even_when_channels_are_limited(engine, slack_api, clock):
    settings = make_settings(slack_api, slack_allowed_users=ME, slack_allowed_channels="C0FINANCE")
    task(engine, clock, title="My follow-up")
    with start_web(engine, settings, slack_api, clock) as web:
        home_opened(web, user=ME)
    [view] = published(slack_api)
    assert "My follow-up" in texts(view)

"""Installing billbot on a Stripe account that already has paying customers: `billbot backfill`
from the loopback Stripe API, then `billbot revenue` and `billbot lookup`, then live webhooks.
The revenue figures must count the customers who were already paying, and a live change for
one of them is that change (expansion), not a "new" customer."""

from __future__ import annotations

from datetime import UTC, datetime

from tests import factories as f
from tests.e2e.harness import running_billbot, url_of
from tests.fakes.stripe_api import StripeStandIn

API_KEY = "sk_test_e2e_new_install"
FEB = 1_769_904_000  # 2026-02-01T00:00:00Z


def test_backfilled_customers_count_in_revenue_and_live_changes_are_movements(
    engine, billbot, billbot_json
):
    version = f.NEW
    ada = f.customer(api_version=version, name="Ada Lovelace", email="ada@example.com", created=FEB)
    basic = f.price(api_version=version, unit_amount=4900, nickname="Basic")
    item = f.item(basic, 1)
    subscription = f.subscription(
        api_version=version, customer=ada["id"], items=[item], created=FEB,
        current_period_start=FEB, current_period_end=FEB + 28 * f.DAY,
    )  # fmt: skip
    env = {"DATABASE_URL": url_of(engine), "STRIPE_API_KEY": API_KEY}
    with StripeStandIn(api_key=API_KEY) as stripe_api:
        stripe_api.add("customers", ada)
        stripe_api.add("subscriptions", subscription)
        for _ in range(2):  # and again: a second run changes nothing
            code, _, err = billbot("backfill", STRIPE_API_BASE=stripe_api.url, **env)
            assert code == 0, err

    [match] = billbot_json("lookup", "ada@example.com", **env)["matches"]
    assert (match["status"], match["mrr"]["amount"]) == ("current", 4900)
    report = billbot_json("revenue", **env)
    assert (report["mrr"], report["active_customers"]) == (4900, 1)
    assert report["movements"]["new"]["count"] == 0  # not new this month: paying since February
    february = billbot_json("revenue", "--month", "2026-02", **env)
    assert (february["mrr"], february["movements"]["new"]) == (4900, {"amount": 4900, "count": 1})

    now = int(datetime.now(UTC).timestamp())
    seats = f.item(basic, 3, id=item.id)
    upgraded = {**subscription, "items": f.subscription(
        api_version=version, customer=ada["id"], items=[seats], id=subscription["id"],
    )["items"]}  # fmt: skip
    with running_billbot(engine) as bot:
        bot.happen([
            f.event("customer.subscription.updated", upgraded, created=now, api_version=version,
                    previous_attributes={"items": subscription["items"]}),
        ])  # fmt: skip
    report = billbot_json("revenue", **env)
    assert (report["mrr"], report["active_customers"]) == (14700, 1)
    assert report["movements"]["new"]["count"] == 0
    assert report["movements"]["expansion"] == {"amount": 9800, "count": 1}

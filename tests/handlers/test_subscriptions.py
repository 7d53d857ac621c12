from __future__ import annotations

from decimal import Decimal

import pytest
from sqlmodel import select

from storage.billing import items_for_subscriptions, subscriptions_for_customer
from storage.db import read_scope
from storage.models import Subscription, SubscriptionItem
from storage.timeline import timeline_for_customer
from tests import factories as f
from tests.handlers.support import at, fetch, items_of


@pytest.mark.parametrize("api_version", f.API_VERSIONS)
def test_subscription_with_items_and_discounts_in_either_shape(engine, apply, api_version):
    cus = f.customer()
    pro = f.price(api_version=api_version, unit_amount=4900, nickname="Pro", interval="month")
    seats = f.price(api_version=api_version, unit_amount=1000, product=f.product(name="Seats"))
    sub = f.subscription(
        api_version=api_version, customer=cus["id"], items=[f.item(pro, 1), f.item(seats, 3)],
        current_period_start=f.T0, current_period_end=f.T0 + 31 * f.DAY,
        coupons=[f.coupon(id="LOYAL", percent_off=25.5)],
    )  # fmt: skip
    [change] = apply(
        f.event("customer.subscription.created", sub, created=f.T0, api_version=api_version)
    )

    row = fetch(engine, Subscription, sub["id"])
    assert (row.customer_id, row.status, row.currency) == (cus["id"], "active", "usd")
    assert (row.current_period_start, row.current_period_end) == (at(f.T0), at(f.T0 + 31 * f.DAY))
    assert row.discounts == [
        {"id": row.discounts[0]["id"], "coupon": "LOYAL", "duration": "forever", "percent_off": "25.5",
         "amount_off": None, "currency": None}
    ]  # fmt: skip
    with read_scope(engine) as session:
        stored = session.exec(select(SubscriptionItem).order_by(SubscriptionItem.unit_amount)).all()
        assert [
            (i.plan_name, i.quantity, i.unit_amount, i.interval, i.interval_count, i.usage_type)
            for i in stored
        ] == [
            ("Seats", 3, 1000, "month", 1, "licensed"),
            ("Pro", 1, 4900, "month", 1, "licensed"),
        ]
        assert {i.current_period_end for i in stored} == {at(f.T0 + 31 * f.DAY)}
        assert stored[0].product_id == seats["product"]["id"]
    # (4900 + 3 × 1000) less a forever 25.5% discount.
    assert change.details["mrr_after"] == Decimal(7900) * Decimal("0.745")
    assert change.details["mrr_before"] is None


def test_basil_period_is_the_items_earliest_end(engine, apply):
    monthly = f.price(interval="month")
    yearly = f.price(interval="year", unit_amount=20000)
    sub = f.subscription(customer="cus_x", items=[f.item(monthly), f.item(yearly)])
    ends = {0: f.T0 + 365 * f.DAY, 1: f.T0 + 31 * f.DAY}
    for index, line in enumerate(sub["items"]["data"]):
        line["current_period_end"] = ends[index]
    apply(f.event("customer.subscription.created", sub, created=f.T0, api_version=f.NEW))
    assert fetch(engine, Subscription, sub["id"]).current_period_end == at(f.T0 + 31 * f.DAY)


def test_expandables_as_ids_or_objects(engine, apply):
    cus = f.customer()
    product = f.product(name="Team plan")
    by_id = f.price(unit_amount=1500, product=product)
    sub = f.subscription(customer=cus, items=[f.item(by_id, 2, price_as_id=True)])
    apply(f.event("customer.subscription.created", sub, created=f.T0, api_version=f.NEW))
    row = fetch(engine, Subscription, sub["id"])
    assert row.customer_id == cus["id"]
    # The price is only an id: its legacy `plan` twin still says what it costs.
    assert items_of(engine, sub["id"]) == {sub["items"]["data"][0]["id"]: (by_id["id"], 2, 1500)}

    expanded_product = f.subscription(customer=cus["id"], items=[f.item(f.price(product=product))])
    apply(
        f.event("customer.subscription.created", expanded_product, created=f.T0, api_version=f.NEW)
    )
    with read_scope(engine) as session:
        [line] = items_for_subscriptions(
            session=session, subscription_ids=[expanded_product["id"]]
        )[expanded_product["id"]]
        assert (line.plan_name, line.product_id) == ("Team plan", product["id"])


def test_tiers_metered_and_decimal_prices(engine, apply):
    tiers = [
        {"up_to": 10, "unit_amount": 500, "flat_amount": None},
        {"up_to": None, "unit_amount": 400, "flat_amount": None},
    ]
    tiered = f.price(unit_amount=None, billing_scheme="tiered", tiers_mode="graduated", tiers=tiers)
    metered = f.price(usage_type="metered", unit_amount=None, unit_amount_decimal="0.25")
    plain = f.price(unit_amount=1000)
    sub = f.subscription(
        customer="cus_t", items=[f.item(tiered, 12), f.item(metered, None), f.item(plain)]
    )
    apply(f.event("customer.subscription.created", sub, created=f.T0, api_version=f.NEW))
    with read_scope(engine) as session:
        lines = {
            i.price_id: i
            for i in items_for_subscriptions(session=session, subscription_ids=[sub["id"]])[
                sub["id"]
            ]
        }
        assert (lines[tiered["id"]].billing_scheme, lines[tiered["id"]].tiers_mode) == (
            "tiered",
            "graduated",
        )
        assert lines[tiered["id"]].tiers == tiers
        assert (lines[metered["id"]].usage_type, lines[metered["id"]].unit_amount_decimal) == (
            "metered",
            "0.25",
        )
        assert lines[plain["id"]].tiers is None


@pytest.mark.parametrize(
    ("currency", "unit_amount", "shown"), [("jpy", 5000, "¥5,000"), ("kwd", 12_340, "KWD 12.340")]
)
def test_zero_and_three_decimal_amounts_stay_integers(engine, apply, currency, unit_amount, shown):
    price = f.price(currency=currency.upper(), unit_amount=unit_amount, nickname="Plan")
    sub = f.subscription(customer="cus_c", items=[f.item(price)], currency=currency.upper())
    [change] = apply(f.event("customer.subscription.created", sub, created=f.T0, api_version=f.NEW))
    row = fetch(engine, Subscription, sub["id"])
    assert row.currency == currency
    assert items_of(engine, sub["id"]) == {
        sub["items"]["data"][0]["id"]: (price["id"], 1, unit_amount)
    }
    assert change.details["mrr_after"] == unit_amount
    with read_scope(engine) as session:
        [entry] = timeline_for_customer(session=session, customer_id="cus_c")
        assert entry.summary == f"Subscribed to Plan ({shown}/month)"


def test_older_event_never_overwrites_newer_state_or_items(engine, apply):
    basic, premium = f.price(unit_amount=1000), f.price(unit_amount=5000)
    seat = f.item(basic, 1)
    old = f.subscription(customer="cus_o", items=[seat], status="trialing")
    new = f.subscription(
        customer="cus_o", id=old["id"], items=[f.item(premium, 3, id=seat.id), f.item(basic, 1)]
    )
    apply(
        f.event("customer.subscription.updated", new, created=f.T0 + 60, api_version=f.NEW),
        f.event("customer.subscription.created", old, created=f.T0, api_version=f.NEW),
    )
    row = fetch(engine, Subscription, old["id"])
    assert (row.status, row.version_at) == ("active", at(f.T0 + 60))
    lines = items_of(engine, old["id"])
    assert lines[seat.id] == (premium["id"], 3, 5000)
    assert len(lines) == 2


def test_items_are_replaced_wholesale_with_their_subscription(engine, apply):
    a, b = f.item(f.price()), f.item(f.price())
    sub = f.subscription(customer="cus_r", items=[a, b])
    fewer = f.subscription(customer="cus_r", id=sub["id"], items=[f.item(b.price, 4, id=b.id)])
    apply(
        f.event("customer.subscription.created", sub, created=f.T0, api_version=f.OLD),
        f.event("customer.subscription.updated", fewer, created=f.T0 + 1, api_version=f.OLD),
    )
    assert items_of(engine, sub["id"]) == {b.id: (b.price["id"], 4, 2000)}


@pytest.mark.parametrize("order", ["update_first", "delete_first"])
def test_update_and_deletion_in_the_same_second_end_canceled(engine, apply, order):
    line = f.item(f.price())
    active = f.subscription(customer="cus_s", items=[line])
    canceled = dict(active, status="canceled", canceled_at=f.T0 + 9, ended_at=f.T0 + 9)
    update = f.event(
        "customer.subscription.updated",
        dict(active, metadata={"x": "1"}),
        created=f.T0 + 9,
        api_version=f.NEW,
    )
    delete = f.event("customer.subscription.deleted", canceled, created=f.T0 + 9, api_version=f.NEW)
    apply(f.event("customer.subscription.created", active, created=f.T0, api_version=f.NEW))
    apply(*((update, delete) if order == "update_first" else (delete, update)))
    row = fetch(engine, Subscription, active["id"])
    assert (row.status, row.ended_at, row.version_event_id) == (
        "canceled",
        at(f.T0 + 9),
        delete["id"],
    )


def test_deleted_event_stores_canceled_whatever_the_payload_says(engine, apply):
    sub = f.subscription(customer="cus_d", items=[f.item(f.price())], status="active")
    apply(f.event("customer.subscription.deleted", sub, created=f.T0, api_version=f.NEW))
    assert fetch(engine, Subscription, sub["id"]).status == "canceled"


def test_several_subscriptions_per_customer(engine, apply):
    cus = f.customer()
    subs = [
        f.subscription(customer=cus["id"], items=[f.item(f.price(unit_amount=n))], created=f.T0 + n)
        for n in (100, 200)
    ]
    apply(
        *(
            f.event("customer.subscription.created", s, created=f.T0 + 300, api_version=f.NEW)
            for s in subs
        )
    )
    with read_scope(engine) as session:
        stored = subscriptions_for_customer(session=session, customer_id=cus["id"])
        assert [s.id for s in stored] == [s["id"] for s in subs]
        items = items_for_subscriptions(session=session, subscription_ids=[s.id for s in stored])
        assert [items[s["id"]][0].unit_amount for s in subs] == [100, 200]


def test_discounts_as_ids_or_with_coupon_ids(engine, apply):
    by_id = f.subscription(customer="cus_i", items=[f.item(f.price())], coupons=[f.coupon(id="HALF", percent_off=50)],
                           discounts_as_ids=True)  # fmt: skip
    apply(f.event("customer.subscription.created", by_id, created=f.T0, api_version=f.NEW))
    [entry] = fetch(engine, Subscription, by_id["id"]).discounts
    assert (entry["id"], entry["coupon"], entry["duration"]) == (by_id["discounts"][0], None, None)

    amount = f.subscription(customer="cus_i", items=[f.item(f.price())],
                            coupons=[f.coupon(amount_off=500, currency="USD", duration="once")])  # fmt: skip
    apply(f.event("customer.subscription.created", amount, created=f.T0, api_version=f.OLD))
    [entry] = fetch(engine, Subscription, amount["id"]).discounts
    assert (entry["amount_off"], entry["currency"], entry["duration"], entry["percent_off"]) == (
        500,
        "usd",
        "once",
        None,
    )


def test_cancellation_details_are_kept(engine, apply):
    sub = f.subscription(
        customer="cus_cd", items=[f.item(f.price())], status="canceled", canceled_at=f.T0,
        cancellation_details={"reason": "cancellation_requested", "feedback": "too_expensive", "comment": "Budget cut"},
    )  # fmt: skip
    apply(f.event("customer.subscription.deleted", sub, created=f.T0, api_version=f.OLD))
    row = fetch(engine, Subscription, sub["id"])
    assert (row.cancellation_reason, row.cancellation_feedback, row.cancellation_comment) == (
        "cancellation_requested", "too_expensive", "Budget cut",
    )  # fmt: skip


def test_a_payload_without_items_keeps_the_stored_items(engine, apply):
    line = f.item(f.price(unit_amount=3000))
    sub = f.subscription(customer="cus_k", items=[line])
    trimmed = {k: v for k, v in dict(sub, status="past_due").items() if k != "items"}
    [_, change] = apply(
        f.event("customer.subscription.created", sub, created=f.T0, api_version=f.NEW),
        f.event("customer.subscription.updated", trimmed, created=f.T0 + 1, api_version=f.NEW),
    )
    assert fetch(engine, Subscription, sub["id"]).status == "past_due"
    assert items_of(engine, sub["id"]) == {line.id: (line.price["id"], 1, 3000)}
    assert change.details["mrr_before"] == change.details["mrr_after"] == 3000

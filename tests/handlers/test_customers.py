from __future__ import annotations

import pytest

from storage.billing import customers_by_email, get_customer
from storage.db import read_scope
from storage.models import Customer
from tests import factories as f
from tests.handlers.support import at, fetch


@pytest.mark.parametrize("api_version", f.API_VERSIONS)
def test_customer_created_is_stored_with_normalized_email_and_name(engine, apply, api_version):
    cus = f.customer(api_version=api_version, email="  Ada@Example.COM ", name="Ada LOVELACE",
                     default_payment_method="pm_card_visa", livemode=True)  # fmt: skip
    changes = apply(
        f.event("customer.created", cus, created=f.T0, api_version=api_version, livemode=True)
    )

    row = fetch(engine, Customer, cus["id"])
    assert (row.email, row.email_normalized) == ("  Ada@Example.COM ", "ada@example.com")
    assert row.name_normalized == "ada lovelace"
    assert row.has_payment_method is True
    assert row.livemode is True
    assert row.currency == "usd"
    assert row.created == at(f.T0)
    assert row.raw == cus
    assert [(c.object_type, c.object_id, c.customer_id, c.applied) for c in changes] == [
        ("customer", cus["id"], cus["id"], True)
    ]


def test_payment_method_from_default_source_or_unknown(engine, apply):
    with_source = f.customer(default_source="card_123")
    without = f.customer()
    unknown = {
        k: v for k, v in f.customer().items() if k not in ("invoice_settings", "default_source")
    }
    apply(
        *(
            f.event("customer.created", c, created=f.T0, api_version=f.NEW)
            for c in (with_source, without, unknown)
        )
    )
    with read_scope(engine) as session:
        assert session.get(Customer, with_source["id"]).has_payment_method is True
        assert session.get(Customer, without["id"]).has_payment_method is False
        assert session.get(Customer, unknown["id"]).has_payment_method is None


def test_one_email_shared_by_two_customers_is_kept_apart(engine, apply):
    first = f.customer(email="billing@acme.test", name="Acme EU", created=f.T0)
    second = f.customer(email="Billing@ACME.test ", name="Acme US", created=f.T0 + 5)
    other = f.customer(email="someone@else.test")
    apply(
        *(
            f.event("customer.created", c, created=f.T0 + 10, api_version=f.NEW)
            for c in (first, second, other)
        )
    )

    with read_scope(engine) as session:
        matches = customers_by_email(session=session, email=" BILLING@acme.test")
        assert [(c.id, c.name) for c in matches] == [
            (first["id"], "Acme EU"),
            (second["id"], "Acme US"),
        ]


def test_duplicate_delivery_changes_nothing(engine, apply):
    cus = f.customer(name="Ada")
    created = f.event("customer.created", cus, created=f.T0, api_version=f.NEW)
    first, again = apply(created, created)
    assert first.applied and not again.applied
    assert again.details["reason"] == "duplicate"


def test_older_update_never_overwrites_newer(engine, apply):
    cus = f.customer(name="Old Name")
    newer = dict(cus, name="New Name")
    apply(
        f.event("customer.updated", newer, created=f.T0 + 20, api_version=f.NEW),
        f.event("customer.updated", cus, created=f.T0 + 10, api_version=f.NEW),
    )
    with read_scope(engine) as session:
        row = get_customer(session=session, customer_id=cus["id"])
        assert row.name == "New Name"
        assert row.version_at == at(f.T0 + 20)


@pytest.mark.parametrize("order", ["update_first", "delete_first"])
def test_update_and_deletion_in_the_same_second_end_deleted(engine, apply, order):
    cus = f.customer(name="Ada")
    update = f.event(
        "customer.updated", dict(cus, name="Ada B."), created=f.T0 + 5, api_version=f.NEW
    )
    delete = f.event("customer.deleted", cus, created=f.T0 + 5, api_version=f.NEW)
    apply(f.event("customer.created", cus, created=f.T0, api_version=f.NEW))
    apply(*((update, delete) if order == "update_first" else (delete, update)))
    row = fetch(engine, Customer, cus["id"])
    assert row.deleted is True
    assert row.version_event_id == delete["id"]


def test_deletion_stub_keeps_what_was_known(engine, apply):
    cus = f.customer(email="ada@example.com")
    stub = {"id": cus["id"], "object": "customer", "deleted": True}
    apply(
        f.event("customer.created", cus, created=f.T0, api_version=f.NEW),
        f.event("customer.deleted", stub, created=f.T0 + 1, api_version=f.NEW),
    )
    with read_scope(engine) as session:
        row = session.get(Customer, cus["id"])
        assert row.deleted is True
        assert row.email_normalized == "ada@example.com"
        assert customers_by_email(session=session, email="ada@example.com") == []
        assert (
            len(customers_by_email(session=session, email="ada@example.com", include_deleted=True))
            == 1
        )

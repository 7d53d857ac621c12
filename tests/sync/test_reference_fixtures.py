"""Backfill Stripe's own example objects (shared/reference/stripe/fixtures), served as paginated
lists by the loopback stand-in, through the real stripe client and the real conversion.

The fixtures are schema-shaped, not consistent (placeholder ids and times, see the reference
notes), so each is copied with its own id, customer and creation time; what is checked is that
every object in Stripe's own shape is read page by page and stored, in every table."""

from __future__ import annotations

import copy
import json

from sqlmodel import func, select

from handlers.sync.backfill import Backfill
from storage.db import read_scope
from storage.models import Charge, Customer, Invoice, Refund, Subscription, SubscriptionItem

COPIES = 5
CREATED = 1_767_225_600  # 2026-01-01
KINDS = {
    "customers": ("customer", "cus", Customer),
    "subscriptions": ("subscription", "sub", Subscription),
    "invoices": ("invoice", "in", Invoice),
    "charges": ("charge", "ch", Charge),
    "refunds": ("refund", "re", Refund),
}


def copies(template: dict, prefix: str, count: int) -> list[dict]:
    made = []
    for n in range(count):
        obj = copy.deepcopy(template)
        obj["id"] = f"{prefix}_ref{n:04d}"
        obj["created"] = CREATED + n * 3600
        if "customer" in obj:
            obj["customer"] = f"cus_ref{n:04d}"
        for item in (obj.get("items") or {}).get("data", []):
            item["id"] = f"si_ref{n:04d}"
            item["subscription"] = obj["id"]
        made.append(obj)
    return made


def count(session, model) -> int:
    return session.exec(select(func.count()).select_from(model)).one()


def test_stripes_example_objects_backfill_page_by_page(
    reference_dir, engine, client, pacer, clock, stand_in
):
    fixtures = reference_dir / "stripe" / "fixtures"
    for resource, (name, prefix, _model) in KINDS.items():
        template = json.loads((fixtures / f"{name}.json").read_text())
        stand_in.add(resource, *copies(template, prefix, COPIES))

    backfill = Backfill(engine=engine, client=client, pacer=pacer, now=clock.now, page_size=2)
    results = backfill.run(only=list(KINDS))

    assert all(result.done for result in results)
    assert {result.object_type: result.fetched for result in results} == dict.fromkeys(
        KINDS, COPIES
    )
    with read_scope(engine) as session:
        for _resource, (_name, _prefix, model) in KINDS.items():
            assert count(session, model) == COPIES, model.__name__
        assert count(session, SubscriptionItem) == COPIES
    pages = [r for r in stand_in.requests if r.resource == "customers"]
    assert len(pages) == 3  # 5 objects, 2 a page

"""How fast `billbot lookup` (and so `/paid`) answers with 100,000 customers in the store.

    .venv/bin/python bench/lookup.py [--customers 100000] [--lookups 400] [--backend sqlite|postgres|both]

Seeds a temporary SQLite file and a temporary PostgreSQL database (created on the server
named by BILLBOT_BENCH_POSTGRES_URL, default the CI server; dropped afterwards) with
customers, subscriptions, items, invoices, charges and refunds through bulk Core inserts,
then times `lookup_customers` in its own read-only unit of work (what `/paid` runs on the
server) for lookups by email (with case and whitespace noise), by `cus_` id, by part of a
name, and for emails that match nobody (the suggestion path). Prints p50/p99 per kind.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import string
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from storage.customer_summary import lookup_customers  # noqa: E402
from storage.db import make_engine, read_scope  # noqa: E402
from storage.lookup import normalize_email, normalize_name  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Charge, Customer, Invoice, Refund, Subscription, SubscriptionItem  # noqa: E402

POSTGRES_URL = os.environ.get(
    "BILLBOT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
NOW = datetime(2026, 6, 1, tzinfo=UTC)
CHUNK = 10_000


def words(text: str) -> list[str]:
    return text.split()


FIRST = words(
    "james mary robert patricia john jennifer michael linda david elizabeth william barbara richard susan joseph jessica thomas sarah charles karen christopher lisa daniel nancy matthew betty anthony sandra mark margaret donald ashley steven kimberly andrew emily paul donna joshua michelle kenneth carol kevin amanda brian melissa george deborah timothy stephanie ronald rebecca jason sharon edward laura jeffrey cynthia ryan dorothy jacob amy gary kathleen nicholas angela eric shirley jonathan emma stephen brenda larry pamela justin nicole scott anna brandon samantha zoë josé jürgen søren 王伟 李娜"
)
LAST = words(
    "smith johnson williams brown jones garcia miller davis rodriguez martinez hernandez lopez gonzalez wilson anderson thomas taylor moore jackson martin lee perez thompson white harris sanchez clark ramirez lewis robinson walker young allen king wright scott torres nguyen hill flores green adams nelson baker hall rivera campbell mitchell carter roberts gomez phillips evans turner diaz parker cruz edwards collins reyes stewart morris morales murphy cook rogers gutierrez ortiz morgan cooper peterson bailey reed kelly howard ramos kim cox ward richardson watson brooks chavez wood james bennett gray mendoza ruiz hughes price alvarez castillo sanders patel myers long ross foster jimenez müller o'brien"
)
WORDS = words(
    "acme globex initech umbrella stark wayne hooli vandelay pied piper soylent tyrell wonka cyberdyne aperture massive dynamic oscorp gringotts nakatomi monarch bluth dunder mifflin sterling cooper prestige worldwide wernham hogg"
)
SUFFIX = ["Inc", "LLC", "Ltd", "GmbH", "Labs", "Group", "Studio", "& Co", "SAS", "KK"]
DOMAINS = [
    "gmail.com",
    "yahoo.com",
    "outlook.com",
    "hotmail.com",
    "icloud.com",
    "proton.me",
    "fastmail.com",
]
STATUSES = (
    ["active"] * 70 + ["past_due"] * 8 + ["trialing"] * 7 + ["paused"] * 3 + ["canceled"] * 12
)
PLANS = [
    ("Starter", 900, "month"),
    ("Team", 4900, "month"),
    ("Business", 19900, "month"),
    ("Team annual", 49000, "year"),
]


def stripe_id(rng: random.Random, prefix: str) -> str:
    return f"{prefix}_" + "".join(rng.choices(string.ascii_letters + string.digits, k=14))


def customer_row(rng: random.Random, n: int) -> dict:
    if rng.random() < 0.6:
        first, last = rng.choice(FIRST), rng.choice(LAST)
        name = f"{first.title()} {last.title()}"
        email = f"{first}.{last}{n}@{rng.choice(DOMAINS)}"
    else:
        name = f"{rng.choice(WORDS).title()} {rng.choice(WORDS).title()} {rng.choice(SUFFIX)} {n}"
        email = f"billing{n}@{name.split()[0].lower()}{n % 997}.example"
    email = email if rng.random() < 0.8 else email.title()  # Stripe keeps the case people typed
    created = NOW - timedelta(days=rng.randint(1, 2000))
    raw = {"object": "customer", "email": email, "name": name, "address": {"city": "Berlin", "country": "DE",
           "line1": "Torstraße 1", "postal_code": "10119"}, "invoice_settings": {"default_payment_method":
           stripe_id(rng, "pm")}, "metadata": {"crm_id": str(n), "segment": rng.choice(["smb", "mid", "ent"])},
           "preferred_locales": ["en"], "tax_exempt": "none", "description": "seeded by bench/lookup.py"}  # fmt: skip
    return {
        "id": stripe_id(rng, "cus"), "email": email, "email_normalized": normalize_email(email), "name": name,
        "name_normalized": normalize_name(name), "currency": "usd", "created": created, "livemode": True,
        "raw": raw, "version_at": created, "updated_at": created, "delinquent": False, "deleted": False,
    }  # fmt: skip


def customer_rows(rng: random.Random, customer: dict) -> dict[str, list[dict]]:
    """One customer's subscriptions, items, invoices, charges and refunds."""
    out: dict[str, list[dict]] = {"sub": [], "item": [], "invoice": [], "charge": [], "refund": []}
    stamp = {"livemode": True, "version_at": NOW, "updated_at": NOW}
    for _ in range(1 if rng.random() < 0.7 else 2):
        status, (plan, amount, interval) = rng.choice(STATUSES), rng.choice(PLANS)
        sub_id = stripe_id(rng, "sub")
        out["sub"].append({"id": sub_id, "customer_id": customer["id"], "status": status, "currency": "usd",
                           "current_period_end": NOW + timedelta(days=rng.randint(1, 30)), "created": customer["created"],
                           "raw": {"object": "subscription", "status": status}, "discounts": [], **stamp})  # fmt: skip
        out["item"].append({"id": stripe_id(rng, "si"), "subscription_id": sub_id, "price_id": stripe_id(rng, "price"),
                            "plan_name": plan, "currency": "usd", "unit_amount": amount, "interval": interval,
                            "quantity": rng.randint(1, 5)})  # fmt: skip
        for month in range(3):
            invoice_id, charge_id = stripe_id(rng, "in"), stripe_id(rng, "ch")
            paid_at = NOW - timedelta(days=30 * (month + 1))
            out["invoice"].append({"id": invoice_id, "customer_id": customer["id"], "subscription_id": sub_id,
                                   "status": "paid", "currency": "usd", "amount_due": amount, "amount_paid": amount,
                                   "amount_remaining": 0, "attempt_count": 1, "next_payment_attempt": None,
                                   "total": amount, "paid_at": paid_at, "created": paid_at, "charge_id": charge_id,
                                   "raw": {"object": "invoice", "lines": {"data": [{"amount": amount, "description": plan}]}},
                                   **stamp})  # fmt: skip
            out["charge"].append({"id": charge_id, "customer_id": customer["id"], "invoice_id": invoice_id,
                                  "status": "succeeded", "currency": "usd", "amount": amount, "amount_captured": amount,
                                  "paid": True, "captured": True, "created": paid_at,
                                  "raw": {"object": "charge", "outcome": {"network_status": "approved_by_network"}},
                                  **stamp})  # fmt: skip
            if rng.random() < 0.05:
                out["refund"].append({"id": stripe_id(rng, "re"), "charge_id": charge_id, "currency": "usd",
                                      "amount": amount // 2, "status": "succeeded", "raw": {}, **stamp})  # fmt: skip
        if status == "past_due":
            out["invoice"].append({"id": stripe_id(rng, "in"), "customer_id": customer["id"], "subscription_id": sub_id,
                                   "status": "open", "currency": "usd", "amount_due": amount, "amount_remaining": amount,
                                   "amount_paid": 0, "paid_at": None, "charge_id": None,
                                   "total": amount, "attempt_count": rng.randint(1, 4), "created": NOW,
                                   "next_payment_attempt": NOW + timedelta(days=3), "raw": {"object": "invoice"},
                                   **stamp})  # fmt: skip
    return out


def seed(engine: Engine, customers: int, rng: random.Random) -> list[dict]:
    """Insert everything in chunks; rows of one chunk are shuffled so that a customer's
    invoices and charges are spread over many pages, as they are after years of webhooks."""
    tables = {
        "sub": Subscription,
        "item": SubscriptionItem,
        "invoice": Invoice,
        "charge": Charge,
        "refund": Refund,
    }
    sample: list[dict] = []
    for start in range(0, customers, CHUNK):
        batch = [customer_row(rng, n) for n in range(start, min(start + CHUNK, customers))]
        children: dict[str, list[dict]] = {key: [] for key in tables}
        for customer in batch:
            for key, values in customer_rows(rng, customer).items():
                children[key].extend(values)
        with engine.begin() as connection:
            connection.execute(Customer.__table__.insert(), batch)
            for key, model in tables.items():
                rng.shuffle(children[key])
                if children[key]:
                    connection.execute(model.__table__.insert(), children[key])
        sample.extend(rng.sample(batch, min(len(batch), 200)))
        print(f"  seeded {min(start + CHUNK, customers):,} customers", end="\r", flush=True)
    # What autovacuum / `ANALYZE` would have done by now on a store that grew over years.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(
            "VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE"
        )
    print()
    return sample


def queries(rng: random.Random, sample: list[dict], count: int) -> dict[str, list[str]]:
    def noisy(email: str) -> str:
        return (
            rng.choice(["", " ", "\t"])
            + (email.upper() if rng.random() < 0.3 else email)
            + rng.choice(["", " "])
        )

    def name_part(name: str) -> str:
        word = max(name.split(), key=len)
        size = min(len(word), rng.randint(3, 7))
        start = rng.randint(0, len(word) - size)
        return word[start : start + size]

    def swap(text: str, start: int) -> str:  # swap two different neighbouring letters
        i = next(i for i in range(start, len(text) - 1) if text[i] != text[i + 1])
        return f"{text[:i]}{text[i + 1]}{text[i]}{text[i + 2 :]}"

    def domain_typo(email: str) -> str:
        local, _, domain = email.partition("@")
        return f"{local}@{swap(domain, 1)}"

    def local_typo(email: str) -> str:
        local, _, domain = email.partition("@")
        return f"{swap(local, 1)}@{domain}"

    picks = [rng.choice(sample) for _ in range(count)]
    return {
        "email": [noisy(c["email"]) for c in picks],
        "id": [c["id"] for c in picks],
        "name part": [name_part(c["name"]) for c in picks],
        "no match, domain typo": [domain_typo(c["email_normalized"]) for c in picks],
        "no match, local typo": [local_typo(c["email_normalized"]) for c in picks],
    }


def time_lookups(engine: Engine, texts: list[str]) -> tuple[list[float], int]:
    timings, found = [], 0
    for text in texts:
        started = time.perf_counter()
        with read_scope(engine) as session:
            answer = lookup_customers(session=session, text=text, now=NOW)
        timings.append((time.perf_counter() - started) * 1000)
        found += bool(answer.matches)
    return timings, found


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_backend(label: str, url: str, customers: int, lookups: int) -> None:
    rng = random.Random(20260601)
    engine = make_engine(url)
    try:
        upgrade(engine)
        started = time.perf_counter()
        sample = seed(engine, customers, rng)
        print(f"{label}: seeded {customers:,} customers in {time.perf_counter() - started:.0f} s")
        for kind, texts in queries(rng, sample, lookups).items():
            time_lookups(engine, texts[:50])  # warm up
            timings, found = time_lookups(engine, texts)
            print(f"  {label:<10} {kind:<24} n={len(texts):<5} hits={found:<5} "
                  f"p50={percentile(timings, 50):6.2f} ms  p99={percentile(timings, 99):6.2f} ms")  # fmt: skip
    finally:
        engine.dispose()


@contextmanager
def temporary_postgres() -> Iterator[str]:
    admin_url = make_url(POSTGRES_URL)
    admin = make_engine(admin_url.render_as_string(hide_password=False)).execution_options(
        isolation_level="AUTOCOMMIT"
    )
    name = f"billbot_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--lookups", type=int, default=400, help="timed lookups per kind")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        directory = tempfile.mkdtemp(prefix="billbot_bench_")
        try:
            run_backend("SQLite", f"sqlite:///{directory}/bench.db", args.customers, args.lookups)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    if args.backend in ("postgres", "both"):
        with temporary_postgres() as url:
            run_backend("PostgreSQL", url, args.customers, args.lookups)


if __name__ == "__main__":
    main()

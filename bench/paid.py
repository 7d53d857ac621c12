"""How long billbot's server-side work for `/paid` takes with 100,000 customers in the store.

    .venv/bin/python bench/paid.py [--customers 100000] [--queries 400] [--backend sqlite|postgres|both]

Reuses bench/lookup.py's seeder (customers, subscriptions, items, invoices, charges and
refunds by bulk Core inserts), adds what `/paid` reads besides the lookup (an MRR ledger of
two lines per customer, and 20,000 open follow-up tasks), then times exactly what the
listener does after its acknowledgement: split off `public`, open a read-only unit of work,
`paid_answer` (parse, lookup, open tasks, MRR history, Block Kit). Slack's network time is
not in it. Prints p50/p99 per kind of query; the target is p99 < 50 ms on both databases.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import Engine, select  # noqa: E402

from bench.lookup import NOW, percentile, queries, seed, temporary_postgres  # noqa: E402
from bot.settings import Settings  # noqa: E402
from handlers.slack.commands import UserFacingError, split_public  # noqa: E402
from handlers.slack.commands_paid import paid_answer  # noqa: E402
from storage.db import make_engine, read_scope  # noqa: E402
from storage.migrate import upgrade  # noqa: E402
from storage.models import Customer, MrrMovement, Task  # noqa: E402
from storage.models.ledger import LEDGER_SCALE  # noqa: E402

TASKS = 20_000
KINDS = ("email", "id", "name part", "no match, domain typo")


def seed_extras(engine: Engine, sample: list[dict], rng: random.Random) -> None:
    """The ledger and tasks `/paid` reads: two MRR lines per customer, open tasks."""
    known = [row["id"] for row in sample]
    with engine.begin() as connection:
        ids = list(connection.execute(select(Customer.id)).scalars())
        for start in range(0, len(ids), 10_000):
            lines = []
            for customer_id in ids[start : start + 10_000]:
                first, second = rng.choice([900, 4900, 19900]), rng.choice([4900, 9800])
                lines += [
                    _line(customer_id, "new", first, first, NOW - timedelta(days=300), "a"),
                    _line(customer_id, "expansion", second - first, second, NOW - timedelta(days=40), "b"),
                ]  # fmt: skip
            connection.execute(MrrMovement.__table__.insert(), lines)
        tasks = [
            {
                "customer_id": rng.choice(known),
                "title": "Follow up",
                "assignee": "U0BENCH",
                "creator": "U0BENCH",
                "status": "open",
                "due_date": (NOW + timedelta(days=2)).date(),
                "created_at": NOW,
                "updated_at": NOW,
            }  # fmt: skip
            for _ in range(TASKS)
        ]
        connection.execute(Task.__table__.insert(), tasks)


def _line(customer_id: str, kind: str, amount: int, after: int, at, tag: str) -> dict:
    return {"customer_id": customer_id, "currency": "usd", "kind": kind, "amount": amount * LEDGER_SCALE,
            "mrr_after": after * LEDGER_SCALE, "occurred_at": at, "event_id": f"evt_{tag}_{customer_id}",
            "recorded_at": at}  # fmt: skip


def time_paid(engine: Engine, settings: Settings, texts: list[str]) -> tuple[list[float], int]:
    timings, customers = [], 0
    for text in texts:
        started = time.perf_counter()
        query, _public = split_public(text)
        try:
            with read_scope(engine) as session:
                answer = paid_answer(session, text=query, now=NOW, settings=settings)
            customers += answer.is_customer
        except UserFacingError:
            pass
        timings.append((time.perf_counter() - started) * 1000)
    return timings, customers


def run_backend(label: str, url: str, customers: int, count: int) -> None:
    rng = random.Random(20261127)
    engine = make_engine(url)
    settings = Settings(_env_file=None, database_url=url)
    try:
        upgrade(engine)
        started = time.perf_counter()
        sample = seed(engine, customers, rng)
        seed_extras(engine, sample, rng)
        print(f"{label}: seeded {customers:,} customers in {time.perf_counter() - started:.0f} s")
        for kind, texts in queries(rng, sample, count).items():
            if kind not in KINDS:
                continue
            time_paid(engine, settings, texts[:50])  # warm up
            timings, found = time_paid(engine, settings, texts)
            print(f"  {label:<10} {kind:<22} n={len(texts):<5} one customer={found:<5} "
                  f"p50={percentile(timings, 50):6.2f} ms  p99={percentile(timings, 99):6.2f} ms")  # fmt: skip
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=400, help="timed /paid answers per kind")
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        directory = tempfile.mkdtemp(prefix="billbot_bench_")
        try:
            run_backend("SQLite", f"sqlite:///{directory}/bench.db", args.customers, args.queries)
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    if args.backend in ("postgres", "both"):
        with temporary_postgres() as url:
            run_backend("PostgreSQL", url, args.customers, args.queries)


if __name__ == "__main__":
    main()

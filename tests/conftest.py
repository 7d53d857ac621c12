"""Real databases for every test: a fresh SQLite file, and a PostgreSQL database of our own.

PostgreSQL is not optional: when `BILLBOT_TEST_POSTGRES_URL` (default: the CI server on
127.0.0.1:5432, database `test`) cannot be reached, tests that use it fail with the reason.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.db import make_engine
from storage.migrate import upgrade

POSTGRES_URL = os.environ.get(
    "BILLBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REFERENCE = SHARED / "reference"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "billbot.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    # Outside any transaction: SQLite refuses a checkpoint inside BEGIN IMMEDIATE.
    raw = engine.raw_connection()
    try:
        raw.driver_connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    engine.dispose()
    return path


@pytest.fixture
def sqlite_url(sqlite_template, tmp_path) -> str:
    path = tmp_path / "billbot.db"
    shutil.copy(sqlite_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A database of this test run's own, migrated once, dropped at the end."""
    admin_url = make_url(POSTGRES_URL)
    name = f"billbot_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = make_engine(admin_url.render_as_string(hide_password=False)).execution_options(
            isolation_level="AUTOCOMMIT"
        )
        with admin.connect() as connection:
            connection.exec_driver_sql(f'CREATE DATABASE "{name}"')
    except Exception as exc:
        pytest.fail(
            f"PostgreSQL is required for these tests and is unreachable at {POSTGRES_URL} "
            f"(set BILLBOT_TEST_POSTGRES_URL): {exc}",
            pytrace=False,
        )
    url = admin_url.set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    with admin.connect() as connection:
        connection.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.dispose()


@pytest.fixture
def postgres_url(postgres_database) -> str:
    engine = make_engine(postgres_database)
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    engine.dispose()
    return postgres_database


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request) -> str:
    """Run the test once on SQLite and once on PostgreSQL."""
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture
def engine(database_url) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sqlite_engine(sqlite_url) -> Iterator[Engine]:
    engine = make_engine(sqlite_url)
    yield engine
    engine.dispose()


@pytest.fixture
def reference_dir() -> Path:
    """Stripe's and Slack's reference files beside the project, when this checkout has them."""
    if not REFERENCE.is_dir():
        pytest.skip(f"reference files not found at {REFERENCE} (they live beside the project)")
    return REFERENCE

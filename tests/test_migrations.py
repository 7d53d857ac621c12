"""The migrations and the models describe the same schema, and migrating twice is harmless."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlmodel import SQLModel

import storage.models  # noqa: F401
from storage.db import make_engine
from storage.migrate import upgrade


def test_migrations_match_the_models(sqlite_url):
    engine = make_engine(sqlite_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    engine.dispose()
    assert differences == [], "models changed without a migration: " + repr(differences)


def test_upgrade_is_idempotent(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    upgrade(engine)
    engine.dispose()

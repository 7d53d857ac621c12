"""customer lookup indexes

Revision ID: b4fada4797a6
Revises: ade7511fc249
Create Date: 2026-11-28 06:02:04.340297

A btree index on `customer (name_normalized, id)` on every backend, and on PostgreSQL trigram
(GIN) indexes so that `LIKE '%part%'` on names and emails is answered from an index.
`pg_trgm` is a trusted extension (the database owner may create it); if it cannot be
created, lookups still work, only slower, and a warning says why.
"""

import logging
from collections.abc import Sequence

from alembic import op

revision: str = 'b4fada4797a6'
down_revision: str | None = '58f45b94e1d3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

logger = logging.getLogger("storage.migrations")
TRIGRAM_INDEXES = {
    "ix_customer_name_normalized_trgm": "name_normalized",
    "ix_customer_email_normalized_trgm": "email_normalized",
}


def upgrade() -> None:
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.create_index('ix_customer_name_normalized', ['name_normalized', 'id'], unique=False)
    connection = op.get_bind()
    if connection.dialect.name != "postgresql":
        return
    try:
        with connection.begin_nested():
            connection.exec_driver_sql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except Exception as exc:  # no privilege or extension not installed: stay correct, be slower
        logger.warning("migration.pg_trgm_unavailable", extra={"error": str(exc).splitlines()[0]})
        return
    for name, column in TRIGRAM_INDEXES.items():
        connection.exec_driver_sql(
            f"CREATE INDEX IF NOT EXISTS {name} ON customer USING gin ({column} gin_trgm_ops)"
        )


def downgrade() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        for name in TRIGRAM_INDEXES:
            connection.exec_driver_sql(f"DROP INDEX IF EXISTS {name}")
    with op.batch_alter_table('customer', schema=None) as batch_op:
        batch_op.drop_index('ix_customer_name_normalized')

"""Indexes for finding customers (`storage/lookup.py`), declared on the customer table.

`ix_customer_name_normalized` (name, id) lets a name search read ids from the index alone
(SQLite scans it instead of the table; PostgreSQL can use it for index-only scans). PostgreSQL additionally gets trigram (GIN)
indexes for `LIKE '%part%'` on names and emails; those exist only in the migration that
creates them (they need the `pg_trgm` extension and mean nothing to SQLite), so they are
not declared here.
"""

from __future__ import annotations

from sqlalchemy import Index

from storage.models.billing import Customer

customer_name_index = Index(
    "ix_customer_name_normalized", Customer.__table__.c.name_normalized, Customer.__table__.c.id
)

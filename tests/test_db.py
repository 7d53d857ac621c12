"""The SQLite engine's settings, seen from what users of the file rely on."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.db import SQLITE_WAL_SIZE_LIMIT, make_engine, read_scope


def test_after_a_burst_the_wal_file_shrinks_back_to_its_limit(sqlite_url):
    """While a reader holds an old snapshot (or writes never pause for a checkpoint to
    finish), SQLite cannot start the WAL over and the file grows past the limit; once it
    can, the file is cut back, instead of keeping the burst's size on disk for good."""
    engine = make_engine(sqlite_url)
    wal = Path(f"{make_url(sqlite_url).database}-wal")
    chunk = os.urandom(1 << 20)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE burst (body BLOB)"))

    def write(commits: int) -> None:
        for _ in range(commits):
            with engine.begin() as connection:
                connection.execute(text("INSERT INTO burst (body) VALUES (:body)"), {"body": chunk})

    with read_scope(engine) as reader:
        reader.execute(text("SELECT count(*) FROM burst")).one()  # holds its snapshot
        write(SQLITE_WAL_SIZE_LIMIT // len(chunk) + 16)
        assert wal.stat().st_size > SQLITE_WAL_SIZE_LIMIT
    write(4)  # the first commit's checkpoint copies everything, the next starts the WAL over
    assert wal.stat().st_size <= SQLITE_WAL_SIZE_LIMIT
    engine.dispose()

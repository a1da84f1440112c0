"""What the fuzz tests share: how many examples to generate, and a database emptied between
examples, so that a failing example replays (and shrinks) the same way."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import sqlalchemy as sa

from tests.conftest import is_postgres
from tripcomms.audit.models import GENESIS_HASH
from tripcomms.extensions import db


def examples(sqlite: int) -> int:
    """How many examples a fuzz test generates: ``sqlite`` on SQLite, a third of it on
    PostgreSQL, where every example's fresh database costs several times more. The app's code
    is the same on both; what only PostgreSQL refuses (string lengths, integer ranges, the
    full-text index's limits) shows in the first few examples that reach it.

    FUZZ_SCALE=10 in the environment multiplies them, for a longer hunt than the suite's.
    """
    scale = max(int(os.environ.get("FUZZ_SCALE") or 1), 1)
    return scale * (sqlite if not is_postgres() else max(sqlite // 3, 10))


def empty_database(app, migrated_database: str) -> None:
    """The app's database as a new test gets it: migrated, with no rows."""
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if is_postgres():
        # DELETE, not the TRUNCATE of tests/conftest.py: with a few rows it takes a hundredth of
        # the time, which counts at one emptying per generated example. Ids are not restarted.
        with app.app_context(), db.engine.begin() as conn:
            conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
            for table in reversed(db.metadata.sorted_tables):
                conn.execute(table.delete())
            conn.execute(
                sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :genesis)"),
                {"genesis": GENESIS_HASH},
            )
        return
    path = app.config["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///")
    for suffix in ("-wal", "-shm"):
        Path(path + suffix).unlink(missing_ok=True)
    shutil.copyfile(migrated_database, path)

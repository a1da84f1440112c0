"""Migration 0011 (the outbox's unknown-outcome columns) goes down and up again on the test
database, keeping what 0008 made by hand."""

from __future__ import annotations

import sqlalchemy as sa
from flask_migrate import downgrade, upgrade

from tests.conftest import is_postgres
from tripcomms.extensions import db

COLUMNS = {"attempt_started_at", "unknown_outcome_at"}


def message_columns() -> set[str]:
    return {column["name"] for column in sa.inspect(db.engine).get_columns("messages")}


def text_index() -> set[str]:
    with db.engine.connect() as conn:
        if is_postgres():
            query = "SELECT indexname FROM pg_indexes WHERE indexname = 'ix_messages_body_fts'"
        else:
            query = "SELECT name FROM sqlite_master WHERE name LIKE 'messages_fts%'"
        return {row[0] for row in conn.exec_driver_sql(query)}


def test_the_unknown_outcome_columns_go_down_and_up_again(app):
    with app.app_context():
        assert message_columns() >= COLUMNS
        made_by_hand = text_index()
        assert made_by_hand
        try:
            downgrade(revision="0010_concern_notices")
            assert not COLUMNS & message_columns()
            assert text_index() == made_by_hand
        finally:
            upgrade()
        assert message_columns() >= COLUMNS
        assert text_index() == made_by_hand
        db.engine.dispose()

"""Flask extensions, created unbound here and bound to an app in ``create_app``."""

from __future__ import annotations

import sqlite3

from flask import Blueprint, request
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

from tripcomms.sqlite_writes import BUSY_TIMEOUT

# Named constraints let Alembic alter them later, on SQLite (batch mode) as on PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
migrate = Migrate()
login_manager = LoginManager()
csrf = CSRFProtect()
limiter = Limiter(key_func=get_remote_address)
# Blueprints no address-based limit applies to (see ``unlimited``).
_UNLIMITED: set[str] = set()


def unlimited(blueprint: Blueprint) -> Blueprint:
    """Exempt a blueprint from rate limits: Twilio's webhooks all come from Twilio's addresses,
    and the health check is polled. The request filter lets the limiter skip them before it
    resolves any limits, which it would otherwise do on every webhook."""
    limiter.exempt(blueprint)
    _UNLIMITED.add(blueprint.name)
    return blueprint


@limiter.request_filter
def _unlimited_blueprint() -> bool:
    return request.blueprint in _UNLIMITED


@event.listens_for(Engine, "connect")
def _sqlite_pragmas(dbapi_connection, _record) -> None:
    """SQLite: WAL for concurrent readers, foreign keys on, wait rather than fail on a lock,
    temporary files in memory."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT * 1000)}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # Statement journals and sorts in memory: a webhook's INSERT that merges the full-text
        # index's segments spilled its journal to a new temporary file about every fifth text.
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.close()


def plain_rows(statement, params: dict | None = None):
    """Run a statement of columns (no ORM entities) on the session's connection.

    The result is the same as ``db.session.execute``, without the ORM's execution layer,
    which costs more than the statement itself on the relay's hot path. Pending changes are
    flushed first, as the ORM would, unless autoflush is off (the relay turns it off while
    it routes a text, to take SQLite's write lock as late as it can).
    """
    session = db.session
    if session.autoflush and (session.new or session.dirty or session.deleted):
        session.flush()
    return session.connection().execute(statement, params or {})

"""Fixtures shared by every test: an app on a clean database, clients, factories, guards.

The database is SQLite unless TRIPCOMMS_TEST_DATABASE_URL names another (CI runs the whole
suite once more with PostgreSQL). Migrations run once per session; each test then starts from
an empty migrated database: a copy of a template file on SQLite, emptied tables on PostgreSQL.
"""

from __future__ import annotations

import ipaddress
import os
import shutil
import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask_migrate import upgrade

from tests.helpers import Factory, TripcommsClient
from tripcomms import create_app
from tripcomms.audit.models import GENESIS_HASH
from tripcomms.extensions import db
from tripcomms.relay.outbox import stop_in_process

TEST_DATABASE_URL = os.environ.get("TRIPCOMMS_TEST_DATABASE_URL", "").strip()

BASE_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "test-secret-key",
    # Cheap scrypt parameters: the same code path, a fraction of the cost.
    "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
    "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
    "SMS_BACKEND": "simulator",
    "TWILIO_ACCOUNT_SID": "AC" + "1" * 32,
    "TWILIO_AUTH_TOKEN": "test-auth-token",
    "SCHOOL_NAME": "Test Primary School",
    "OFFICE_PHONE": "+441234567890",
    "SEND_IN_PROCESS": False,
}


def is_postgres() -> bool:
    return TEST_DATABASE_URL.startswith("postgresql")


# --- Network guard -------------------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _is_loopback(host: object) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


def _guarded_connect(self, address, *args):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise RuntimeError(f"tests may not open network connections (to {address[0]!r})")
    return _real_connect(self, address, *args)


def _guarded_connect_ex(self, address, *args):
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
        raise RuntimeError(f"tests may not open network connections (to {address[0]!r})")
    return _real_connect_ex(self, address, *args)


def _guarded_getaddrinfo(host, *args, **kwargs):
    name = host.decode() if isinstance(host, bytes) else host
    if not _is_loopback(name):
        raise RuntimeError(f"tests may not look up network hosts ({name!r})")
    return _real_getaddrinfo(host, *args, **kwargs)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Fail any attempt to reach a non-loopback address, Twilio's API above all."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", _guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", _guarded_getaddrinfo)
    for name in ("TWILIO_EDGE", "TWILIO_REGION", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name in list(os.environ):
        if name.startswith("TRIPCOMMS_") and name != "TRIPCOMMS_TEST_DATABASE_URL":
            monkeypatch.delenv(name)


# --- Database ------------------------------------------------------------------------------


def _migrate(url: str) -> None:
    app = create_app({**BASE_CONFIG, "DATABASE_URL": url})
    with app.app_context():
        if url.startswith("postgresql"):
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
        upgrade()
        if url.startswith("sqlite"):
            with db.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        db.engine.dispose()


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory) -> str:
    """Migrate once per session; return the URL (PostgreSQL) or template path (SQLite)."""
    if TEST_DATABASE_URL and not is_postgres():
        raise pytest.UsageError("TRIPCOMMS_TEST_DATABASE_URL must be a postgresql+psycopg URL")
    if is_postgres():
        _migrate(TEST_DATABASE_URL)
        return TEST_DATABASE_URL
    template = tmp_path_factory.mktemp("template") / "template.sqlite"
    _migrate(f"sqlite:///{template}")
    return str(template)


def _empty_postgres(app) -> None:
    """Empty every table, the append-only audit table included (triggers off for this session)."""
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        tables = [t.name for t in db.metadata.sorted_tables]
        conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
        conn.execute(
            sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :genesis)"),
            {"genesis": GENESIS_HASH},
        )


@pytest.fixture
def database_url(migrated_database, tmp_path) -> str:
    if is_postgres():
        return migrated_database
    path = tmp_path / "test.sqlite"
    shutil.copyfile(migrated_database, path)
    return f"sqlite:///{path}"


@pytest.fixture
def app_config(database_url) -> dict:
    """Override in a test module (or update in a test before ``app``) to change settings."""
    return {**BASE_CONFIG, "DATABASE_URL": database_url}


@pytest.fixture
def app(app_config):
    app = create_app(app_config)
    app.test_client_class = TripcommsClient
    if is_postgres():
        _empty_postgres(app)
    yield app
    stop_in_process(app)  # a test that turned the in-process sender on leaves nothing running
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


@pytest.fixture
def client(app) -> TripcommsClient:
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def factory(app) -> Factory:
    return Factory(app)


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent

"""Configuration: defaults < instance/config.py < TRIPCOMMS_* environment < create_app(config).

Every setting named in the design's "Interfaces that stay stable" lives here with its default.
Durations (RELAY_OPEN_BEFORE, ...) accept a ``timedelta``, a number of minutes, or a string
such as ``"90m"``, ``"2h"`` or ``"7d"``.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import click
from flask import Flask

from tripcomms.sqlite_writes import QueuedWriterConnection, is_sqlite_file


class ConfigError(click.ClickException):
    """A setting is missing or wrong; start-up stops with a one-line message.

    It is a ClickException so that ``flask --app tripcomms ...`` and the ``tripcomms`` script
    print the message on one line and exit non-zero instead of showing a traceback.
    """


class DefaultConfig:
    SECRET_KEY: str | None = None
    DATABASE_URL: str | None = None  # None: instance/tripcomms.sqlite
    PUBLIC_BASE_URL = "http://127.0.0.1:5000"
    SMS_BACKEND = "twilio"
    TWILIO_ACCOUNT_SID: str | None = None
    TWILIO_AUTH_TOKEN: str | None = None
    TWILIO_API_BASE_URL = "https://api.twilio.com"
    TWILIO_TIMEOUT_SECONDS = 10
    SCHOOL_NAME = "Our School"
    OFFICE_PHONE = ""
    NOTIFY_FROM = ""
    SCHOOL_EMAIL_DOMAIN = ""
    RELAY_OPEN_BEFORE: Any = timedelta(hours=2)
    RELAY_GRACE_AFTER: Any = timedelta(hours=24)
    NUMBER_COOLDOWN: Any = timedelta(days=7)
    RESPONSE_TARGET_MINUTES = 30
    RETENTION_DAYS = 400
    # Safeguarding: text the DSL and Headteacher about each new concern, and the office about a
    # parent's text left unanswered for twice RESPONSE_TARGET_MINUTES (both from NOTIFY_FROM).
    # A staff phone with no approval that texts this often in this many minutes is a concern.
    CONCERN_SMS = True
    ESCALATE_BY_SMS = True
    UNAPPROVED_REPEAT_COUNT = 3
    UNAPPROVED_REPEAT_MINUTES = 60
    SEND_IN_PROCESS = True
    # The outbox sender (relay/outbox.py).
    SEND_CONCURRENCY = 16
    SEND_BATCH = 64
    SEND_LEASE_SECONDS = 60
    SEND_MAX_ATTEMPTS = 8
    SEND_MAX_AGE_MINUTES = 60
    SEND_BACKOFF_SECONDS = 2.0
    SEND_BACKOFF_MAX_SECONDS = 300.0
    SENDER_POLL_SECONDS = 1.0
    # The relay: copy what one staff phone sends to the trip's other phones; how often an
    # unknown sender may get the automatic reply.
    RELAY_COPY_TO_ENDPOINTS = True
    AUTO_REPLY_EVERY_MINUTES = 60
    RATELIMIT_STORAGE_URI = "memory://"
    LOGIN_LIMIT_PER_ACCOUNT = "5 per 15 minutes"
    LOGIN_LIMIT_PER_ADDRESS = "30 per 15 minutes"
    # Webhooks with a bad signature are refused and audited; past this many from one address
    # they are still refused, but only logged, so nobody can fill the audit log by posting.
    BAD_SIGNATURE_AUDITS_PER_ADDRESS = "30 per hour"
    LOG_FORMAT = "text"  # or "json": one JSON object a line
    LOG_LEVEL = "INFO"
    TRUSTED_PROXIES = 0  # how many reverse proxies set X-Forwarded-* in front of the app
    PASSWORD_HASH_METHOD = "scrypt"  # noqa: S105 (a method name, not a password)
    MIN_PASSWORD_LENGTH = 10
    DEMO = False
    TESTING = False

    # Framework settings derived or fixed here.
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    PERMANENT_SESSION_LIFETIME = timedelta(hours=12)
    MAX_CONTENT_LENGTH = 10 * 1024 * 1024
    WTF_CSRF_TIME_LIMIT = None  # a form left open on a phone all afternoon still submits
    SQLALCHEMY_ENGINE_OPTIONS: dict[str, Any] = {}
    # SQLite file databases: writers wait in line on a lock file beside the database instead
    # of polling in SQLite's busy handler (tripcomms.sqlite_writes).
    SQLITE_QUEUE_WRITERS = True
    RATELIMIT_HEADERS_ENABLED = False


DURATION_SETTINGS = ("RELAY_OPEN_BEFORE", "RELAY_GRACE_AFTER", "NUMBER_COOLDOWN")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "": "minutes", "h": "hours", "d": "days"}


def parse_duration(name: str, value: Any) -> timedelta:
    """Turn a duration setting into a timedelta; raise ConfigError naming the setting."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(minutes=value)
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(f"{name} must be a duration such as 90m, 2h or 7d, not {value!r}")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def load_config(app: Flask, config: dict[str, Any] | None = None) -> None:
    """Fill ``app.config`` from all sources, then derive and check the settings."""
    app.config.from_object(DefaultConfig)
    app.config.from_pyfile("config.py", silent=True)
    app.config.from_prefixed_env("TRIPCOMMS")
    if config:
        app.config.update(config)
    _derive(app)
    _check(app)


def _derive(app: Flask) -> None:
    cfg = app.config
    for name in DURATION_SETTINGS:
        cfg[name] = parse_duration(name, cfg[name])
    if not cfg.get("DATABASE_URL"):
        cfg["DATABASE_URL"] = "sqlite:///" + f"{app.instance_path}/tripcomms.sqlite"
    cfg["SQLALCHEMY_DATABASE_URI"] = cfg["DATABASE_URL"]
    if cfg["SQLITE_QUEUE_WRITERS"] and is_sqlite_file(cfg["DATABASE_URL"]):
        options = cfg["SQLALCHEMY_ENGINE_OPTIONS"] = dict(cfg["SQLALCHEMY_ENGINE_OPTIONS"])
        options["connect_args"] = {"factory": QueuedWriterConnection} | options.get(
            "connect_args", {}
        )
    cfg["PUBLIC_BASE_URL"] = str(cfg["PUBLIC_BASE_URL"]).rstrip("/")
    cfg["SESSION_COOKIE_SECURE"] = cfg["PUBLIC_BASE_URL"].startswith("https://")
    cfg["REMEMBER_COOKIE_SECURE"] = cfg["SESSION_COOKIE_SECURE"]
    cfg["RATELIMIT_ENABLED"] = cfg.get("RATELIMIT_ENABLED", True)


def _check(app: Flask) -> None:
    cfg = app.config
    if cfg["LOG_FORMAT"] not in ("text", "json"):
        raise ConfigError(f"LOG_FORMAT must be 'text' or 'json', not {cfg['LOG_FORMAT']!r}")
    if cfg["SMS_BACKEND"] not in ("twilio", "simulator"):
        raise ConfigError(
            f"SMS_BACKEND must be 'twilio' or 'simulator', not {cfg['SMS_BACKEND']!r}"
        )
    if cfg["TESTING"] or cfg["DEMO"]:
        return
    if not cfg.get("SECRET_KEY"):
        raise ConfigError(
            "SECRET_KEY is not set: put it in instance/config.py or TRIPCOMMS_SECRET_KEY"
        )
    if cfg["SMS_BACKEND"] == "twilio":
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
            if not cfg.get(name):
                raise ConfigError(
                    f"{name} is not set (SMS_BACKEND is 'twilio'): put it in "
                    f"instance/config.py or TRIPCOMMS_{name}"
                )

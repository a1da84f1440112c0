"""The baseline for ``webhook_throughput.py``: the least a webhook endpoint can do.

A bare Flask app whose ``POST /twilio/sms`` parses the same form as tripcomms' webhook and
inserts one row into a SQLite table (WAL, synchronous=NORMAL, as tripcomms sets it), then
answers the same empty TwiML. No signature check, no ORM, no routing, no audit.

Served by gunicorn as ``bare_app:create_app()`` with ``BENCH_BARE_DB`` naming the file.
"""

from __future__ import annotations

import os
import sqlite3
import threading

from flask import Flask, Response, request

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
SCHEMA = """
CREATE TABLE IF NOT EXISTS inbound (
    id INTEGER PRIMARY KEY,
    sid VARCHAR(64) NOT NULL UNIQUE,
    from_number VARCHAR(40) NOT NULL,
    to_number VARCHAR(40) NOT NULL,
    body TEXT NOT NULL,
    num_media INTEGER NOT NULL
)
"""


def connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, timeout=15, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=15000")
    return conn


def create_schema(path: str) -> None:
    conn = connect(path)
    conn.execute(SCHEMA)
    conn.close()


def create_app() -> Flask:
    path = os.environ["BENCH_BARE_DB"]
    app = Flask(__name__)
    local = threading.local()

    def connection() -> sqlite3.Connection:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = connect(path)
        return conn

    @app.post("/twilio/sms")
    def sms() -> Response:
        form = request.form
        # Autocommit: the one INSERT is its own transaction.
        connection().execute(
            "INSERT INTO inbound (sid, from_number, to_number, body, num_media) "
            "VALUES (?, ?, ?, ?, ?)",
            (
                form.get("MessageSid", ""),
                form.get("From", ""),
                form.get("To", ""),
                form.get("Body", ""),
                int(form.get("NumMedia", "0") or 0),
            ),
        )
        return Response(EMPTY_TWIML, mimetype="text/xml")

    return app

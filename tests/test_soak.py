"""The soak, short: the deployment under bursts of texts, broadcasts, Twilio faults and a kill.

``bench/soak.py`` (``make soak``) runs for a minute by hand; here it runs small, as its own
processes. When the suite runs on PostgreSQL: the several-process deployment (gunicorn with 4
workers, 2 sender processes, one killed) on a database of its own on the same server, created
here and dropped after, so the suite's database is never touched. On SQLite: the default
deployment, one process with its sender, killed and restarted by gunicorn.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import TEST_DATABASE_URL, is_postgres

REPO = Path(__file__).resolve().parent.parent
SMALL = [
    "--seconds", "15",
    "--burst-every", "2",
    "--lease", "10",
    "--drain-timeout", "90",
]  # fmt: skip
POSTGRES_SIZE = ["--parents", "50", "--burst", "25", "--broadcasts", "2", "--contacts", "150"]
SQLITE_SIZE = ["--parents", "30", "--burst", "15", "--broadcasts", "2", "--contacts", "100"]


@pytest.fixture
def soak_database() -> Iterator[str]:
    """``sqlite``, or a new PostgreSQL database beside the suite's, dropped afterwards."""
    if not is_postgres():
        yield "sqlite"
        return
    url = make_url(TEST_DATABASE_URL)
    name = f"{url.database}_soak"
    server = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with server.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        server.dispose()


@pytest.mark.timeout(400)
def test_the_soak_loses_nothing_and_duplicates_only_what_the_kill_explains(soak_database, tmp_path):
    report = tmp_path / "soak.json"
    size = SQLITE_SIZE if soak_database == "sqlite" else POSTGRES_SIZE
    command = [sys.executable, "bench/soak.py", "--database", soak_database, *SMALL, *size]
    command += ["--report", str(report), "--logs", str(tmp_path / "logs")]

    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=380)

    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert output.rstrip().splitlines()[-1].startswith("PASS"), output
    figures = json.loads(report.read_text())
    assert figures["passed"] and figures["problems"] == []
    texts = figures["texts"]
    assert texts["posted"] >= 100
    assert (texts["stored"], texts["missing"], texts["stored_twice"]) == (texts["posted"], 0, 0)
    assert figures["forwards"]["delivered"] == texts["posted"]
    contacts = int(size[size.index("--contacts") + 1])
    assert [b["messages"] for b in figures["broadcasts"]] == [contacts, contacts]
    assert figures["outbound"]["delivered_once"] == figures["outbound"]["rows"]
    assert figures["outbound"]["rows"] == texts["posted"] + 2 * contacts
    assert figures["webhook_5xx"] == 0
    assert figures["twilio"]["answered_429"] > 0 and figures["twilio"]["answered_500"] > 0
    assert figures["twilio"]["rows_sent_more_than_once"] > 0
    kill = figures["kill"]
    assert kill["exit"] == -9 and kill["restarted_pid"] not in (0, kill["killed_pid"])
    assert kill["held_by_killed"] > 0
    assert kill["recovered_after_lease"] + kill["found_at_twilio"] == kill["held_by_killed"]
    duplicates = figures["duplicates"]
    # The outbox looks at Twilio before sending a reclaimed row again: the texts the killed
    # sender handed over before it died are found there, not sent twice.
    assert duplicates["extra_deliveries"] == 0
    assert duplicates["accepted_but_unrecorded"] == 0
    assert figures["audit"].startswith("audit chain OK")

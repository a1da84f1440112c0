"""What the benchmarks share: databases made for the run, a seeded trip, served processes,
statistics and the PASS/FAIL line.

Nothing here is measured itself. Every benchmark builds its own database from the migrations
in a temporary directory (or empties the PostgreSQL database it is given), listens on loopback
only, and removes what it made when it ends.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import platform
import secrets
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    # The roster files the tests use are the benchmarks' too (tests/trips/rosters.py).
    sys.path.insert(0, str(REPO))

import sqlalchemy as sa  # noqa: E402
from flask import Flask  # noqa: E402
from flask_migrate import upgrade  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from tests.trips.rosters import big_roster, mobile  # noqa: E402
from tripcomms import create_app  # noqa: E402
from tripcomms.audit.models import GENESIS_HASH  # noqa: E402
from tripcomms.audit.operations import SystemActor  # noqa: E402
from tripcomms.extensions import db  # noqa: E402

BENCH = SystemActor("bench")
TRIP_NUMBER = "+441234000001"  # the trip's Twilio number (a geographic number, as in the tests)
SCHOOL_PHONE_BASE = 7500000001  # school phones: +447500000001, +447500000002, ...
ACCOUNT_SID = "AC" + "b" * 32
PASSWORD = "bench-password-not-secret"  # noqa: S105 (a throwaway account in a throwaway DB)


def bench_config(database_url: str, **overrides: Any) -> dict[str, Any]:
    """Settings for an app under benchmark: the simulator backend, a fresh random token."""
    config: dict[str, Any] = {
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": database_url,
        "PUBLIC_BASE_URL": "http://127.0.0.1:5000",
        "SMS_BACKEND": "simulator",
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": secrets.token_hex(16),
        "SCHOOL_NAME": "Bench Primary School",
        "OFFICE_PHONE": "+441234567890",
        # Cheap scrypt for the seeded account: no one signs in during a benchmark.
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1",
        "SEND_IN_PROCESS": False,
    }
    config.update(overrides)
    return config


def env_for(config: dict[str, Any]) -> dict[str, str]:
    """The settings as TRIPCOMMS_* variables, for an app served by another process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPCOMMS_")}
    for name, value in config.items():
        # from_prefixed_env reads each value as JSON where it can: true/false are booleans.
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        env[f"TRIPCOMMS_{name}"] = text
    return env


# --- Databases --------------------------------------------------------------------------------


def sqlite_url(directory: Path, name: str = "bench.sqlite") -> str:
    return f"sqlite:///{directory / name}"


def check_postgres_url(url: str) -> None:
    """Refuse anything but a PostgreSQL database on this machine (the run empties it)."""
    parts = urlsplit(url)
    if not parts.scheme.startswith("postgresql"):
        raise SystemExit(f"not a PostgreSQL URL: {parts.scheme}://...")
    host = parts.hostname or "localhost"
    loopback = host == "localhost"
    with contextlib.suppress(ValueError):
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    if not loopback:
        raise SystemExit("benchmarks use loopback only: give a PostgreSQL URL on 127.0.0.1")
    if parts.path.strip("/") == "test":
        raise SystemExit("the database 'test' belongs to the test suite; use another")


def migrate_fresh(app: Flask) -> None:
    """Make the app's database empty and migrated (PostgreSQL: drop and recreate public)."""
    with app.app_context():
        if db.engine.dialect.name == "postgresql":
            with db.engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA public"))
        logging.disable(logging.INFO)  # Alembic's "Running upgrade ..." lines
        try:
            upgrade()
        finally:
            logging.disable(logging.NOTSET)
        if db.engine.dialect.name == "sqlite":
            with db.engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        db.session.remove()
        db.engine.dispose()


def empty_postgres(app: Flask) -> None:
    """Empty every table of a migrated PostgreSQL database, the audit chain included."""
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("SET LOCAL session_replication_role = replica"))
        tables = ", ".join(t.name for t in db.metadata.sorted_tables)
        conn.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY"))
        conn.execute(
            sa.text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :genesis)"),
            {"genesis": GENESIS_HASH},
        )


def quiet_app(config: dict[str, Any]) -> Flask:
    """An app whose request logging does not reach the terminal."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    return create_app(config)


# --- A trip ready to relay ----------------------------------------------------------------------


@dataclass
class Seeded:
    trip_id: int
    leader_id: int
    trip_number: str
    school_phones: list[str]
    parents: list[str] = field(default_factory=list)  # E.164, in roster order


def school_phone(n: int) -> str:
    return f"+44{SCHOOL_PHONE_BASE + n}"


def create_leader_and_trip(app: Flask, title: str = "Bench trip") -> tuple[int, int]:
    """A leader and a trip in progress now (so inside its relay window). Returns their ids."""
    from tripcomms.auth import operations as auth_ops
    from tripcomms.trips import operations as trip_ops
    from tripcomms.types import utcnow

    with app.app_context():
        leader = auth_ops.create_user(
            BENCH,
            email="leader@bench.school",
            name="Bench Leader",
            roles=["leader"],
            password=PASSWORD,
        )
        now = utcnow()
        trip = trip_ops.create_trip(
            BENCH,
            title=title,
            starts_at=now - timedelta(hours=1),
            ends_at=now + timedelta(hours=8),
            leader=leader,
        )
        db.session.commit()
        return leader.id, trip.id


def seed_trip(app: Flask, pupils: int, contacts_per_pupil: int = 2, phones: int = 1) -> Seeded:
    """A trip in its relay window with a number, a roster of ``pupils`` x ``contacts_per_pupil``
    parents, and ``phones`` school phones on loan to its leader (so every parent's text makes
    one forward per phone)."""
    from tripcomms.auth.models import User
    from tripcomms.mobile import normalise_number
    from tripcomms.phones import operations as phone_ops
    from tripcomms.relay import numbers as number_ops
    from tripcomms.trips import operations as trip_ops
    from tripcomms.trips.models import Trip

    leader_id, trip_id = create_leader_and_trip(app)
    with app.app_context():
        trip = db.session.get(Trip, trip_id)
        leader = db.session.get(User, leader_id)
        number_ops.add_number(BENCH, TRIP_NUMBER)
        number_ops.allocate_number(BENCH, trip)
        trip_ops.import_roster(BENCH, trip, big_roster(pupils, contacts_per_pupil))
        numbers = [school_phone(i) for i in range(phones)]
        for i, number in enumerate(numbers):
            phone = phone_ops.add_phone(BENCH, label=f"Trip phone {i + 1}", number=number)
            phone_ops.issue_loan(BENCH, phone, trip, leader)
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    parents = [normalise_number(mobile(n)) for n in range(pupils * contacts_per_pupil)]
    return Seeded(trip_id, leader_id, TRIP_NUMBER, numbers, parents)


def seeded_app(
    config: dict[str, Any], pupils: int, contacts_per_pupil: int = 2, phones: int = 1
) -> tuple[Flask, Seeded]:
    """An app on ``config``, its database emptied and migrated, and a trip seeded in it as
    ``seed_trip`` seeds one."""
    app = quiet_app(config)
    migrate_fresh(app)
    return app, seed_trip(app, pupils, contacts_per_pupil, phones)


def stored_inbound() -> tuple[Counter, dict[str, int]]:
    """What the database holds of the texts posted in (in an app context): how many times each
    MessageSid is stored, and how many inbound texts of each kind."""
    from tripcomms.relay.models import Direction, Message

    inbound = Message.direction == Direction.IN
    by_sid = db.session.execute(
        sa.select(Message.twilio_sid, sa.func.count()).where(inbound).group_by(Message.twilio_sid)
    )
    by_kind = db.session.execute(
        sa.select(Message.kind, sa.func.count()).where(inbound).group_by(Message.kind)
    )
    return Counter(dict(by_sid.all())), dict(by_kind.all())


# --- Serving ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen | None = None, timeout: float = 30) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode} before listening")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


@contextlib.contextmanager
def gunicorn(
    app_spec: str,
    port: int,
    env: dict[str, str],
    *,
    workers: int = 2,
    worker_class: str = "sync",
    threads: int = 1,
    pythonpath: str | None = None,
    log_file: Path | None = None,
) -> Iterator[subprocess.Popen]:
    """Serve ``app_spec`` with gunicorn on 127.0.0.1:``port``; stop it (and only it) after."""
    command = [
        str(Path(sys.executable).parent / "gunicorn"),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        worker_class,
        "--threads",
        str(threads),
        "--backlog",
        "256",
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
    ]
    if pythonpath:
        command += ["--pythonpath", pythonpath]
    command.append(app_spec)
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        command, env=env, stdout=out, stderr=out, start_new_session=True, cwd=REPO
    )
    try:
        wait_for_port(port, process)
        yield process
    finally:
        stop_process(process)
        if log_file:
            out.close()


def stop_process(process: subprocess.Popen, timeout: float = 10) -> None:
    """SIGTERM the process we started (gunicorn stops its own workers), then SIGKILL."""
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        # Its workers share its session (start_new_session): end that group, which is ours.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout)


def process_tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by ``pid`` and its children (Linux /proc);
    NaN where /proc cannot tell."""
    ticks = os.sysconf("SC_CLK_TCK")
    total, found = 0, False
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[1] is the parent pid; [11] and [12] are utime and stime, in clock ticks.
        if int(entry.name) == pid or int(fields[1]) == pid:
            total += int(fields[11]) + int(fields[12])
            found = True
    return total / ticks if found else float("nan")


@contextlib.contextmanager
def serve_in_thread(app: Flask) -> Iterator[str]:
    """Serve ``app`` with werkzeug's threaded server on a free loopback port; yield its URL."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass
class ServedTrip:
    """What ``served_trip`` serves: the app, where, its simulator and the seeded trip."""

    app: Flask
    url: str  # where the app is served
    sim: Any  # the app's Simulator, behind the Twilio API
    clock: CreateClock  # notes each Messages create the simulator accepts
    seeded: Seeded


@contextlib.contextmanager
def served_trip(pupils: int, latency: float, **overrides: Any) -> Iterator[ServedTrip]:
    """An app on a fresh SQLite database in a temporary directory (``bench_config`` with
    ``overrides``), a trip seeded with ``pupils`` x 2 parents and one school phone, served by
    ``serve_in_thread`` with the trip number on its simulator, which adds ``latency`` seconds
    to every API call. Afterwards the in-process sender (if any) is stopped, the simulator
    closed and the database disposed of and removed."""
    from tripcomms.relay.outbox import stop_in_process
    from tripcomms.simulator import get_simulator

    with tempfile.TemporaryDirectory(prefix="tripcomms-bench-") as tmp:
        config = bench_config(sqlite_url(Path(tmp)), **overrides)
        app, seeded = seeded_app(config, pupils=pupils, phones=1)
        sim = get_simulator(app)
        clock = CreateClock(sim)
        try:
            with serve_in_thread(app) as url:
                app.config["PUBLIC_BASE_URL"] = url
                sim.add_number(seeded.trip_number)
                sim.set_latency(latency)
                yield ServedTrip(app, url, sim, clock, seeded)
        finally:
            stop_in_process(app)
            sim.close()
            with app.app_context():
                db.session.remove()
                db.engine.dispose()


# --- Figures ------------------------------------------------------------------------------------


def percentile(values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (nearest rank) of ``values``; NaN when there are none."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(p / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def machine() -> str:
    """One line about where the figures come from."""
    return (
        f"{os.cpu_count()} cores, Python {platform.python_version()}, "
        f"SQLite {sqlite3.sqlite_version}, {platform.system()} {platform.release()}"
    )


def verdict(passed: bool, target: str) -> int:
    """Print the PASS/FAIL line; return the exit status."""
    print(f"{'PASS' if passed else 'FAIL'}: {target}")
    return 0 if passed else 1


# --- Inbound webhooks as Twilio posts them --------------------------------------------------------


def new_message_sid() -> str:
    return "SM" + secrets.token_hex(16)


def inbound_form(sid: str, sender: str, to: str, body: str) -> dict[str, str]:
    """The form Twilio posts to the SMS webhook for a text with no media (all its fields)."""
    return {
        "ToCountry": "GB",
        "ToState": "",
        "ToCity": "",
        "ToZip": "",
        "FromCountry": "GB",
        "FromState": "",
        "FromCity": "",
        "FromZip": "",
        "SmsMessageSid": sid,
        "SmsSid": sid,
        "MessageSid": sid,
        "SmsStatus": "received",
        "NumMedia": "0",
        "NumSegments": "1",
        "To": to,
        "From": sender,
        "Body": body,
        "AccountSid": ACCOUNT_SID,
        "ApiVersion": "2010-04-01",
    }


class CreateClock:
    """Wraps a Simulator's Messages create to note when each accepted create happened.

    ``accepted`` holds (perf_counter, To, Body) per create; ``wait_for`` lets a benchmark
    wait for the create whose body satisfies a test.
    """

    def __init__(self, sim: Any) -> None:
        self._create = sim.create_message
        self._changed = threading.Condition()
        self.accepted: list[tuple[float, str, str]] = []
        sim.create_message = self

    def __call__(self, form: Any, requested_at: Any = None) -> dict[str, Any]:
        payload = self._create(form, requested_at=requested_at)
        with self._changed:
            self.accepted.append((time.perf_counter(), str(form.get("To")), str(form.get("Body"))))
            self._changed.notify_all()
        return payload

    def since(self, mark: int) -> list[tuple[float, str, str]]:
        with self._changed:
            return self.accepted[mark:]

    def count(self) -> int:
        with self._changed:
            return len(self.accepted)

    def wait_for(self, mark: int, test: Any, timeout: float) -> float | None:
        """The time of the first create after ``mark`` whose body passes ``test``, or None."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for at, _, body in self.accepted[mark:]:
                    if test(body):
                        return at
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return None
                self._changed.wait(remaining)

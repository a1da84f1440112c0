"""Benchmark: `audit verify` over 1,000,000 audit events (SQLite).

    .venv/bin/python bench/audit_verify.py [--events N] [--fresh] [--output BENCHMARKS.md]

Builds (or reuses) a migrated database holding a valid chain of N events like the relay's
(message ids, kinds, salted digests, what each text caused), written in bulk with executemany
(the hashes computed as ``record`` computes them). Then runs the real command,
`flask --app tripcomms audit verify`, in a child process and times it, start-up included.

Passes when it reports the chain whole in under 15 seconds. Appends its results to the
output file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tripcomms.audit.models import GENESIS_HASH, chain_hash  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "tripcomms-bench"
KINDS = ["forward", "to_contact", "broadcast", "receipt", "copy"]


def config_env(path: Path) -> dict:
    return {
        **os.environ,
        "TRIPCOMMS_DATABASE_URL": f"sqlite:///{path}",
        "TRIPCOMMS_SECRET_KEY": "bench",
        "TRIPCOMMS_SMS_BACKEND": "simulator",
        "TRIPCOMMS_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TRIPCOMMS_TWILIO_AUTH_TOKEN": "bench",
    }


def event_data(rng: random.Random, seq: int) -> tuple[str, str, dict]:
    """(action, subject type, data) of one event, as the relay writes them."""
    digest = hashlib.sha256(f"{seq}".encode()).hexdigest()
    roll = rng.random()
    if roll < 0.45:
        caused = [
            {"id": seq * 3 + i, "kind": rng.choice(KINDS), "digest": digest} for i in range(2)
        ]
        return (
            "message.received",
            "messages",
            {"kind": "from_contact", "digest": digest, "media": 0, "caused": caused},
        )
    if roll < 0.9:
        data = {"id": seq, "kind": rng.choice(KINDS), "digest": digest}
        return "message.queued", "messages", data
    return "login.succeeded", "users", {"address": "127.0.0.1"}


def build(path: Path, events: int) -> None:
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "tripcomms", "db", "upgrade"],
        env=config_env(path),
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rng = random.Random(70)
    start = dt.datetime(2025, 9, 1, 8, 0, tzinfo=dt.UTC)
    con = sqlite3.connect(path)
    con.execute("PRAGMA synchronous=OFF")
    prev = GENESIS_HASH

    def rows():
        nonlocal prev
        for seq in range(1, events + 1):
            at = start + dt.timedelta(seconds=seq * 20, microseconds=rng.randrange(10**6))
            action, subject_type, data = event_data(rng, seq)
            actor = "twilio" if action.startswith("message") else "user"
            actor_id = 1 if actor == "user" else None
            subject_id = str(seq)
            digest = chain_hash(
                prev, seq, at, actor_id, actor, action, subject_type, subject_id, data
            )
            yield (
                seq,
                at.strftime("%Y-%m-%d %H:%M:%S.%f"),
                actor_id,
                actor,
                action,
                subject_type,
                subject_id,
                json.dumps(data),
                prev,
                digest,
            )
            prev = digest

    con.execute(
        "INSERT INTO users (id, email, name, password_hash, active, session_token, created_at)"
        " VALUES (1, 'head@bench.example', 'Helen Head', 'x', 1, 'x', '2025-09-01 08:00:00')"
    )
    con.executemany("INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
    con.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (events, prev))
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()


def database(events: int, fresh: bool) -> Path:
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"audit-{events}.sqlite"
    if fresh or not path.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        started = time.perf_counter()
        print(f"building {events:,} audit events in {path} ...", file=sys.stderr)
        build(path, events)
        print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


def run(events: int, fresh: bool, repeat: int) -> dict:
    path = database(events, fresh)
    command = [sys.executable, "-m", "flask", "--app", "tripcomms", "audit", "verify"]
    times, cpu, loads, output, ok = [], [], [], "", True
    for _ in range(repeat):
        loads.append(os.getloadavg()[0])
        started = time.perf_counter()
        child = subprocess.Popen(
            command,
            env=config_env(path),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        output = child.stdout.read().strip()
        _, status, usage = os.wait4(child.pid, 0)
        times.append(time.perf_counter() - started)
        cpu.append(usage.ru_utime + usage.ru_stime)
        if os.waitstatus_to_exitcode(status) != 0:
            ok = False
            break
    return {
        "events": events,
        "times": times,
        "cpu": cpu,
        "loads": loads,
        "output": output.splitlines()[-1] if output else "",
        "ok": ok,
    }


def report(results: dict, output: Path | None) -> bool:
    middle = statistics.median(results["times"])
    fast = middle < 15 and results["ok"]
    runs = ", ".join(
        f"{wall:.1f} s ({cpu:.1f} s CPU, load {load:.1f})"
        for wall, cpu, load in zip(results["times"], results["cpu"], results["loads"], strict=True)
    )
    lines = [
        f"## Audit chain verify, {results['events']:,} events, SQLite "
        f"({dt.date.today().isoformat()})",
        "",
        f"`python bench/audit_verify.py --events {results['events']}` on {platform.machine()} "
        f"{platform.system()}, Python {platform.python_version()}, SQLite "
        f"{sqlite3.sqlite_version}, {os.cpu_count()} CPUs, shared with other work (the load "
        f"average is given for each run). The real command, start-up included: {runs}. "
        f"It said: `{results['output']}`.",
        "",
        f"- Median {middle:.1f} s wall, {results['events'] / middle:,.0f} events/s; "
        f"{statistics.median(results['cpu']):.1f} s of CPU (target < 15 s). "
        f"**{'PASS' if fast else 'FAIL'}**",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if output is not None:
        with output.open("a", encoding="utf-8") as file:
            file.write(text + "\n")
    return fast


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached database")
    parser.add_argument("--output", type=Path, help="append the results to this file")
    args = parser.parse_args()
    sys.exit(0 if report(run(args.events, args.fresh, args.repeat), args.output) else 1)


if __name__ == "__main__":
    main()

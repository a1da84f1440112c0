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

import datetime as dt
import hashlib
import json
import os
import random
import statistics
import subprocess
import sys
from pathlib import Path

import large_db

sys.path.insert(0, str(large_db.ROOT))

from tripcomms.audit.models import GENESIS_HASH, chain_hash

KINDS = ["forward", "to_contact", "broadcast", "receipt", "copy"]


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
        env=large_db.app_env(path),
        cwd=large_db.ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rng = random.Random(70)
    start = dt.datetime(2025, 9, 1, 8, 0, tzinfo=dt.UTC)
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

    with large_db.bulk_load(path) as con:
        con.execute(
            "INSERT INTO users (id, email, name, password_hash, active, session_token,"
            " created_at) VALUES (1, 'head@bench.example', 'Helen Head', 'x', 1, 'x',"
            " '2025-09-01 08:00:00')"
        )
        con.executemany("INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows())
        con.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (events, prev))


def database(events: int, fresh: bool) -> Path:
    return large_db.cached("audit", events, "audit events", build, fresh)


def run(events: int, fresh: bool, repeat: int) -> dict:
    path = database(events, fresh)
    command = [sys.executable, "-m", "flask", "--app", "tripcomms", "audit", "verify"]
    times, cpu, loads, output, ok = [], [], [], "", True
    for _ in range(repeat):
        loads.append(os.getloadavg()[0])
        child = large_db.run_child(command, large_db.app_env(path), capture=True)
        output = child.output
        times.append(child.seconds)
        cpu.append(child.cpu)
        if child.exit_code != 0:
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
        large_db.heading("Audit chain verify", results["events"], "events"),
        "",
        f"{large_db.command_on_host('audit_verify.py', 'events', results['events'])}, shared with "
        f"other work (the load average is given for each run). The real command, start-up "
        f"included: {runs}. It said: `{results['output']}`.",
        "",
        f"- Median {middle:.1f} s wall, {results['events'] / middle:,.0f} events/s; "
        f"{statistics.median(results['cpu']):.1f} s of CPU (target < 15 s). {large_db.mark(fast)}",
        "",
    ]
    large_db.publish(lines, output)
    return fast


def main() -> None:
    args = large_db.arguments(__doc__, "events", repeat=3)
    sys.exit(0 if report(run(args.events, args.fresh, args.repeat), args.output) else 1)


if __name__ == "__main__":
    main()

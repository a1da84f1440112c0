"""Benchmark: `audit export` of 1,000,000 messages: peak memory, and its rate against a raw
sqlite3 cursor writing the same columns with the csv module.

    .venv/bin/python bench/record_export.py [--messages N] [--fresh] [--output BENCHMARKS.md]

Uses the database that bench/record_search.py builds (and builds it if missing). Runs the
real command, `flask --app tripcomms audit export --output FILE`, in a child process, then
the baseline in another, and reads each one's peak resident memory from the kernel
(``wait4``). The baseline produces the same file byte for byte, which is checked.

Passes when the export's peak RSS is under 200 MB and its rate at least 30% of the
baseline's. Appends its results to the output file.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import hashlib
import os
import platform
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from record_search import database  # noqa: E402

RAW_QUERY = """
SELECT m.id, m.created_at, m.trip_id, t.title, m.direction, m.kind, m.from_number,
       m.to_number, m.body, m.status, m.error_code, m.twilio_sid, c.name, u.name
FROM messages m
LEFT JOIN trips t ON t.id = m.trip_id
LEFT JOIN contacts c ON c.id = m.contact_id
LEFT JOIN users u ON u.id = m.staff_id
ORDER BY m.created_at, m.id
"""


def raw_export(db_path: str, out_path: str) -> None:
    """The baseline: a plain sqlite3 cursor and csv.writer, the same columns and values."""
    from zoneinfo import ZoneInfo

    from tripcomms.audit.export import COLUMNS, _safe_text
    from tripcomms.audit.parties import parties

    london = ZoneInfo("Europe/London")
    utc = dt.UTC
    con = sqlite3.connect(db_path)
    with open(out_path, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        for row in con.execute(RAW_QUERY):
            mid, at, trip_id, title, direction, kind, src, dst = row[:8]
            body, status, error, sid, contact_name, staff_name = row[8:]
            moment = dt.datetime.fromisoformat(at).replace(tzinfo=utc)
            sender, recipient = parties(
                direction=direction,
                kind=kind,
                from_number=src,
                to_number=dst,
                contact_name=contact_name,
                staff_name=staff_name,
                trip_title=title,
            )
            writer.writerow(
                [
                    mid,
                    at[:19],
                    moment.astimezone(london).strftime("%Y-%m-%d %H:%M:%S"),
                    trip_id or "",
                    _safe_text(title or ""),
                    direction,
                    kind,
                    sender.role,
                    _safe_text(sender.name),
                    sender.number,
                    recipient.role,
                    _safe_text(recipient.name),
                    recipient.number,
                    _safe_text(body),
                    status,
                    error if error is not None else "",
                    sid or "",
                ]
            )
    con.close()


def measure(command: list[str], env: dict | None = None) -> tuple[float, int]:
    """(seconds, peak RSS in bytes) of one child process."""
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{command[2:5]} failed with exit code {child.returncode}")
    return elapsed, usage.ru_maxrss * 1024


def digest(path: Path) -> tuple[str, int]:
    sha, lines = hashlib.sha256(), 0
    with path.open("rb") as file:
        for line in file:
            sha.update(line)
            lines += 1
    return sha.hexdigest(), lines


def run(messages: int, fresh: bool) -> dict:
    db_path = database(messages, fresh)
    out = db_path.parent
    env = {
        **os.environ,
        "TRIPCOMMS_DATABASE_URL": f"sqlite:///{db_path}",
        "TRIPCOMMS_SECRET_KEY": "bench",
        "TRIPCOMMS_SMS_BACKEND": "simulator",
        "TRIPCOMMS_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TRIPCOMMS_TWILIO_AUTH_TOKEN": "bench",
    }
    ours_file, raw_file = out / "export-ours.csv", out / "export-raw.csv"
    flask = [sys.executable, "-m", "flask", "--app", "tripcomms"]
    ours = measure([*flask, "audit", "export", "--output", str(ours_file)], env)
    raw = measure([sys.executable, __file__, "--raw", str(db_path), str(raw_file)])
    ours_digest, raw_digest = digest(ours_file), digest(raw_file)
    size = ours_file.stat().st_size
    ours_file.unlink()
    raw_file.unlink()
    return {
        "messages": messages,
        "ours": ours,
        "raw": raw,
        "rows": ours_digest[1] - 1,
        "same": ours_digest == raw_digest,
        "size": size,
    }


def report(results: dict, output: Path | None) -> bool:
    rows = results["rows"]
    ours_s, ours_rss = results["ours"]
    raw_s, raw_rss = results["raw"]
    ours_rate, raw_rate = rows / ours_s, rows / raw_s
    share = ours_rate / raw_rate
    memory_ok = ours_rss < 200 * 1024 * 1024
    rate_ok = share >= 0.30
    lines = [
        f"## CSV export, {results['messages']:,} messages, SQLite ({dt.date.today().isoformat()})",
        "",
        f"`python bench/record_export.py --messages {results['messages']}` on "
        f"{platform.machine()} {platform.system()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs "
        f"(load average {os.getloadavg()[0]:.1f}, shared with other work). "
        f"Each side in its own process; peak RSS from `wait4`. "
        f"{rows:,} rows, {results['size'] / 1e6:.0f} MB of CSV; the two files are "
        f"{'identical' if results['same'] else 'DIFFERENT'}.",
        "",
        "| | seconds | rows/s | peak RSS |",
        "| --- | ---: | ---: | ---: |",
        f"| `flask --app tripcomms audit export --output F` | {ours_s:.1f} | {ours_rate:,.0f} "
        f"| {ours_rss / 2**20:.0f} MB |",
        f"| raw sqlite3 cursor + csv.writer, same columns | {raw_s:.1f} | {raw_rate:,.0f} "
        f"| {raw_rss / 2**20:.0f} MB |",
        "",
        f"- Peak RSS {ours_rss / 2**20:.0f} MB (target < 200 MB). "
        f"**{'PASS' if memory_ok else 'FAIL'}**",
        f"- Rate {share:.0%} of the raw cursor's (target >= 30%). "
        f"**{'PASS' if rate_ok else 'FAIL'}**",
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if output is not None:
        with output.open("a", encoding="utf-8") as file:
            file.write(text + "\n")
    return memory_ok and rate_ok and results["same"]


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--raw":
        raw_export(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached database")
    parser.add_argument("--output", type=Path, help="append the results to this file")
    args = parser.parse_args()
    ok = report(run(args.messages, args.fresh), args.output)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

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

import csv
import datetime as dt
import hashlib
import os
import sqlite3
import sys
from pathlib import Path

import large_db

sys.path.insert(0, str(large_db.ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from record_search import database

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
    child = large_db.run_child(command, env)
    if child.exit_code != 0:
        raise SystemExit(f"{command[2:5]} failed with exit code {child.exit_code}")
    return child.seconds, child.peak_rss


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
    env = large_db.app_env(db_path)
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
    rows, messages = results["rows"], results["messages"]
    command = large_db.command_on_host(
        "record_export.py", "messages", messages, sqlite_version=False
    )
    ours_s, ours_rss = results["ours"]
    raw_s, raw_rss = results["raw"]
    ours_rate, raw_rate = rows / ours_s, rows / raw_s
    share = ours_rate / raw_rate
    memory_ok = ours_rss < 200 * 1024 * 1024
    rate_ok = share >= 0.30
    lines = [
        large_db.heading("CSV export", messages, "messages"),
        "",
        f"{command} "
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
        f"- Peak RSS {ours_rss / 2**20:.0f} MB (target < 200 MB). {large_db.mark(memory_ok)}",
        f"- Rate {share:.0%} of the raw cursor's (target >= 30%). {large_db.mark(rate_ok)}",
        "",
    ]
    large_db.publish(lines, output)
    return memory_ok and rate_ok and results["same"]


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--raw":
        raw_export(sys.argv[2], sys.argv[3])
        return
    args = large_db.arguments(__doc__, "messages")
    ok = report(run(args.messages, args.fresh), args.output)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

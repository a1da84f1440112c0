"""Benchmark: importing a 2,000-contact roster (1,000 pupils x 2 contacts) into a trip.

Measured: the wall time (and this process's CPU time, which the machine's other load moves
much less) of ``trips.operations.import_roster`` plus its commit, on a fresh
migrated SQLite file database (WAL), for the first import of the file into an empty trip and
for a re-import of the same file (which changes nothing). With ``--postgres URL`` the same on
PostgreSQL (that database is emptied: its public schema is dropped and migrated afresh).

Reference in the same run: ``parse_roster`` alone (reading the CSV and parsing every number),
the part of an import that no database can make faster.

Target: every import (first and re-import, on each database) under 2 s, median of the runs.

    .venv/bin/python bench/roster_import.py [--runs 5] [--postgres postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import (
    BENCH,
    bench_config,
    big_roster,
    check_postgres_url,
    create_leader_and_trip,
    empty_postgres,
    machine,
    median,
    migrate_fresh,
    quiet_app,
    sqlite_url,
    verdict,
)
from sqlalchemy import func, select

from tripcomms.extensions import db
from tripcomms.trips import operations as trip_ops
from tripcomms.trips.models import Pupil, Trip, TripContact, TripPupil
from tripcomms.trips.roster import parse_roster

TARGET_SECONDS = 2.0


@dataclass
class Timing:
    wall: float  # seconds
    cpu: float  # CPU seconds of this process (the database server's own are not counted)


def timed_import(app, trip_id: int, data: bytes) -> tuple[Timing, trip_ops.ImportReport]:
    """One import in a fresh app context (as a request or CLI command would), with commit."""
    with app.app_context():
        start, cpu = time.perf_counter(), time.process_time()
        trip = db.session.get(Trip, trip_id)
        report = trip_ops.import_roster(BENCH, trip, data)
        db.session.commit()
        timing = Timing(time.perf_counter() - start, time.process_time() - cpu)
        db.session.remove()
    return timing, report


def check_counts(app, trip_id: int, pupils: int, contacts: int) -> None:
    with app.app_context():
        on_trip = db.session.scalar(
            select(func.count()).select_from(TripPupil).where(TripPupil.trip_id == trip_id)
        )
        codes = db.session.scalar(
            select(func.count()).select_from(TripContact).where(TripContact.trip_id == trip_id)
        )
        all_pupils = db.session.scalar(select(func.count()).select_from(Pupil))
        db.session.remove()
    if (on_trip, codes, all_pupils) != (pupils, contacts, pupils):
        raise SystemExit(
            f"wrong result: {on_trip} pupils on the trip, {codes} contacts, {all_pupils} pupils"
        )


def one_run(app, data: bytes, pupils: int, contacts: int) -> tuple[Timing, Timing]:
    _, trip_id = create_leader_and_trip(app)
    first, report = timed_import(app, trip_id, data)
    if report.contacts_added != contacts or report.pupils_added != pupils:
        raise SystemExit(f"first import did not add everything: {report.summary()}")
    again, report = timed_import(app, trip_id, data)
    if report.changed:
        raise SystemExit(f"re-import changed something: {report.summary()}")
    check_counts(app, trip_id, pupils, contacts)
    return first, again


def run_sqlite(
    data: bytes, runs: int, pupils: int, contacts: int
) -> tuple[list[Timing], list[Timing]]:
    """First import and re-import, each run on a new SQLite file."""
    firsts, agains = [], []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="tripcomms-bench-") as tmp:
            app = quiet_app(bench_config(sqlite_url(Path(tmp))))
            migrate_fresh(app)
            first, again = one_run(app, data, pupils, contacts)
            with app.app_context():
                db.engine.dispose()
        firsts.append(first)
        agains.append(again)
    return firsts, agains


def run_postgres(
    url: str, data: bytes, runs: int, pupils: int, contacts: int
) -> tuple[list[Timing], list[Timing]]:
    """First import and re-import, each run on the emptied PostgreSQL database."""
    check_postgres_url(url)
    app = quiet_app(bench_config(url))
    migrate_fresh(app)
    firsts, agains = [], []
    try:
        for _ in range(runs):
            empty_postgres(app)
            first, again = one_run(app, data, pupils, contacts)
            firsts.append(first)
            agains.append(again)
    finally:
        empty_postgres(app)
        with app.app_context():
            db.engine.dispose()
    return firsts, agains


def show(label: str, timings: list[Timing]) -> float:
    """Print the median wall time, the runs, and the median CPU time; return the median."""
    walls = [t.wall for t in timings]
    runs = ", ".join(f"{v:.3f}" for v in walls)
    cpu = median([t.cpu for t in timings])
    print(f"  {label:<24} median {median(walls):.3f} s, CPU {cpu:.3f} s   (runs: {runs})")
    return median(walls)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh databases (default 5)")
    parser.add_argument("--pupils", type=int, default=1000)
    parser.add_argument("--contacts-per-pupil", type=int, default=2)
    parser.add_argument("--postgres", metavar="URL", help="also on this PostgreSQL database")
    args = parser.parse_args(argv)

    pupils, per = args.pupils, args.contacts_per_pupil
    contacts = pupils * per
    data = big_roster(pupils, per)
    print(f"roster import: {pupils} pupils x {per} contacts = {contacts} rows, {args.runs} runs")
    print(f"  machine: {machine()}")

    parse_times = []
    for _ in range(args.runs):
        start, cpu = time.perf_counter(), time.process_time()
        roster = parse_roster(data)
        parse_times.append(Timing(time.perf_counter() - start, time.process_time() - cpu))
        assert not roster.errors and len(roster.contacts) == contacts

    results: dict[str, list[Timing]] = {}
    results["sqlite first import"], results["sqlite re-import"] = run_sqlite(
        data, args.runs, pupils, contacts
    )
    if args.postgres:
        results["postgres first import"], results["postgres re-import"] = run_postgres(
            args.postgres, data, args.runs, pupils, contacts
        )

    parse = show("parse only (reference)", parse_times)
    slowest = max(show(label, timings) for label, timings in results.items())
    print(f"  slowest median import is {slowest / parse:.1f}x the parse-only reference")
    return verdict(
        slowest < TARGET_SECONDS,
        f"every import of {contacts} contacts under {TARGET_SECONDS:.0f} s "
        f"(slowest median {slowest:.3f} s)",
    )


if __name__ == "__main__":
    sys.exit(main())

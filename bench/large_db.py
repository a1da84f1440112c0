"""What the benchmarks over a large SQLite database share (audit_verify.py, record_search.py,
record_export.py): the database built once in bulk and kept between runs, the settings of an
app on it, a child process timed by the kernel, and the Markdown report they print and append.

Only the standard library is imported here. record_export.py's baseline runs in a child
process that imports record_search.py, and that child's time and peak memory are part of the
figures, so this module must not bring in what common.py imports (Flask, Alembic, the tests'
roster helpers).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Kept between runs: a million rows take minutes to build. TMPDIR moves it.
CACHE = Path(tempfile.gettempdir()) / "tripcomms-bench"


def arguments(doc: str, size: str, repeat: int | None = None) -> argparse.Namespace:
    """The command line: ``--SIZE`` (rows in the database), ``--repeat`` where the benchmark
    repeats its measurement (``repeat`` is the default), ``--fresh`` and ``--output``."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(f"--{size}", type=int, default=1_000_000)
    if repeat is not None:
        parser.add_argument("--repeat", type=int, default=repeat)
    parser.add_argument("--fresh", action="store_true", help="rebuild the cached database")
    parser.add_argument("--output", type=Path, help="append the results to this file")
    return parser.parse_args()


# --- The database -------------------------------------------------------------------------------


def cached(
    kind: str, rows: int, noun: str, build: Callable[[Path, int], None], fresh: bool
) -> Path:
    """CACHE/KIND-ROWS.sqlite, made by ``build(path, rows)`` when it is missing or ``fresh`` is
    set (any old file and its WAL removed first). Says on stderr that it builds ``rows``
    ``noun``, and how long that took."""
    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"{kind}-{rows}.sqlite"
    if fresh or not path.exists():
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        started = time.perf_counter()
        print(f"building {rows:,} {noun} in {path} ...", file=sys.stderr)
        build(path, rows)
        print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    return path


@contextlib.contextmanager
def bulk_load(path: Path) -> Iterator[sqlite3.Connection]:
    """A plain sqlite3 connection to the migrated database at ``path`` for loading rows in
    bulk, without waiting for the disk (a build that fails is simply built again). At the end
    it commits and folds the WAL back into the file, so the cached database is one file."""
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA synchronous=OFF")
        yield con
        con.commit()
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()


def app_settings(path: Path) -> dict[str, str]:
    """What an app on the database at ``path`` needs: the simulator as its SMS backend."""
    return {
        "DATABASE_URL": f"sqlite:///{path}",
        "SECRET_KEY": "bench",
        "SMS_BACKEND": "simulator",
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "bench",
    }


def app_env(path: Path) -> dict[str, str]:
    """This process's environment with ``app_settings`` as TRIPCOMMS_* variables, for
    ``flask --app tripcomms`` run in a child process."""
    settings = {f"TRIPCOMMS_{name}": value for name, value in app_settings(path).items()}
    return {**os.environ, **settings}


# --- A child process, timed -----------------------------------------------------------------------


@dataclass(frozen=True)
class Child:
    """One finished child process, as the kernel counted it (``wait4``)."""

    seconds: float  # wall clock, from just before it started until it was reaped
    cpu: float  # user + system CPU seconds
    peak_rss: int  # bytes
    exit_code: int
    output: str  # stdout and stderr together, stripped, when captured; else ""


def run_child(
    command: list[str], env: dict[str, str] | None = None, *, capture: bool = False
) -> Child:
    """Run ``command`` in the repository and wait for it. Its stdout goes nowhere, unless
    ``capture``: then stdout and stderr are read, together, into ``Child.output``."""
    started = time.perf_counter()
    child = subprocess.Popen(
        command,
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
        stderr=subprocess.STDOUT if capture else None,
        text=capture,
    )
    output = child.stdout.read().strip() if capture else ""
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    # Reaped by wait4: tell Popen, or it would look for the process again.
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.stdout is not None:
        child.stdout.close()
    cpu = usage.ru_utime + usage.ru_stime
    return Child(elapsed, cpu, usage.ru_maxrss * 1024, child.returncode, output)


# --- The report ---------------------------------------------------------------------------------


def heading(title: str, count: int, noun: str) -> str:
    """The report's heading: what was measured, over how many rows, and when."""
    return f"## {title}, {count:,} {noun}, SQLite ({dt.date.today().isoformat()})"


def command_on_host(script: str, size: str, count: int, *, sqlite_version: bool = True) -> str:
    """How to run the benchmark again, and on what: "`python bench/SCRIPT --SIZE COUNT` on
    x86_64 Linux, Python 3.11.7, SQLite 3.40.1, 2 CPUs" (the SQLite version where it
    matters)."""
    sqlite = f"SQLite {sqlite3.sqlite_version}, " if sqlite_version else ""
    return (
        f"`python bench/{script} --{size} {count}` on {platform.machine()} "
        f"{platform.system()}, Python {platform.python_version()}, "
        f"{sqlite}{os.cpu_count()} CPUs"
    )


def mark(passed: bool) -> str:
    return f"**{'PASS' if passed else 'FAIL'}**"


def publish(lines: list[str], output: Path | None) -> None:
    """Print the report, and append it to ``output`` when one is given."""
    text = "\n".join(lines)
    print(text)
    if output is not None:
        with output.open("a", encoding="utf-8") as file:
            file.write(text + "\n")

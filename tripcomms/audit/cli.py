"""`flask --app tripcomms audit ...`"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

import click
from flask.cli import AppGroup

from tripcomms.audit.export import csv_chunks, export_query, export_rows
from tripcomms.audit.operations import CLI, record, verify_chain
from tripcomms.audit.search import LogFilter, search_conditions
from tripcomms.extensions import db
from tripcomms.forms import FIRST_DAY, LAST_DAY
from tripcomms.trips.models import Trip

audit_cli = AppGroup("audit", help="Check and export the audit trail.")

PROGRESS_EVERY = 10_000


@audit_cli.command("verify")
def verify_command() -> None:
    """Recompute the hash chain; exit 1 naming the first bad event."""
    result = verify_chain()
    if not result.ok:
        click.echo(
            f"audit chain broken at sequence {result.bad_seq}: {result.reason} "
            f"({result.checked} events checked before it)",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"audit chain OK: {result.checked} events checked")


def _day(text: str | None, option: str) -> date | None:
    if text is None:
        return None
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        raise click.ClickException(
            f"{option} must be a date like 2026-03-14, not {text!r}"
        ) from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise click.ClickException(f"{option} must be a date from {FIRST_DAY:%Y} to {LAST_DAY:%Y}")
    return day


def _with_progress(rows: Iterable[list], counter: list[int], show: bool) -> Iterator[list]:
    for row in rows:
        counter[0] += 1
        if show and counter[0] % PROGRESS_EVERY == 0:
            click.echo(f"\rexported {counter[0]:,} messages", err=True, nl=False)
        yield row


@audit_cli.command("export")
@click.option("--from", "date_from", metavar="YYYY-MM-DD", help="First day (UK time), included.")
@click.option("--to", "date_to", metavar="YYYY-MM-DD", help="Last day (UK time), included.")
@click.option("--trip", "trip_id", type=int, help="Only this trip's messages.")
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the CSV here instead of to standard output.",
)
def export_command(
    date_from: str | None, date_to: str | None, trip_id: int | None, output: Path | None
) -> None:
    """Every message as CSV, oldest first, numbers in full (policy 61, 70).

    Progress goes to standard error, and only when it is a terminal.
    """
    first, last = _day(date_from, "--from"), _day(date_to, "--to")
    if first and last and last < first:
        raise click.ClickException("--to is before --from")
    if trip_id is not None and db.session.get(Trip, trip_id) is None:
        raise click.ClickException(f"there is no trip {trip_id}")
    if output is not None and not output.resolve().parent.is_dir():
        raise click.ClickException(f"there is no folder {output.resolve().parent}")
    flt = LogFilter(trip_id=trip_id, date_from=first, date_to=last, newest_first=False)
    record(CLI, "log.exported", **flt.as_audit_data(), full_numbers=True)
    db.session.commit()
    counter = [0]
    show = sys.stderr.isatty()
    rows = _with_progress(
        export_rows(export_query(search_conditions(None, flt)), full_numbers=True), counter, show
    )
    if output is None:
        for chunk in csv_chunks(rows):
            click.echo(chunk, nl=False)
    else:
        _write_file(output, csv_chunks(rows))
    if show:
        click.echo(f"\rexported {counter[0]:,} messages", err=True)
    if output is not None:
        click.echo(f"{counter[0]} messages exported to {output}")


def _write_file(path: Path, chunks: Iterable[str]) -> None:
    """Write beside the target and rename at the end: an interrupted export leaves no
    half-written file under the name asked for."""
    directory = path.resolve().parent
    handle, temporary = tempfile.mkstemp(prefix=".export-", suffix=".csv", dir=directory)
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="") as file:
            for chunk in chunks:
                file.write(chunk)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise

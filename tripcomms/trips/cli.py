"""`flask --app tripcomms trips ...`"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from tripcomms.audit.operations import CLI
from tripcomms.cli_support import run_operation
from tripcomms.csvfiles import ImportRejected
from tripcomms.errors import DomainError
from tripcomms.extensions import db
from tripcomms.localtime import parse_local
from tripcomms.trips import operations as ops
from tripcomms.trips.models import Trip

trips_cli = AppGroup("trips", help="Trips and their rosters.")


@trips_cli.command("create")
@click.option("--title", required=True)
@click.option("--leader", "leader_email", required=True, help="The leader's email.")
@click.option("--starts", required=True, help='Local time, "YYYY-MM-DD HH:MM".')
@click.option("--ends", required=True, help='Local time, "YYYY-MM-DD HH:MM".')
@click.option("--staff", "staff_emails", multiple=True, help="Accompanying staff; repeat.")
@click.option("--destination", default="")
def create_command(title, leader_email, starts, ends, staff_emails, destination):
    """Create a trip; prints its id last."""

    def create():
        return ops.create_trip(
            CLI,
            title=title,
            starts_at=parse_local(starts, what="--starts"),
            ends_at=parse_local(ends, what="--ends"),
            leader=ops.find_user_by_email(leader_email),
            staff=[ops.find_user_by_email(e) for e in staff_emails],
            destination=destination,
        )

    trip = run_operation(create)
    click.echo(f"created trip {trip.title!r}")
    click.echo(trip.id)


@trips_cli.command("import-roster")
@click.argument("trip_id", type=int)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_roster_command(trip_id: int, file: Path):
    """Import a roster CSV into a trip: all or nothing, with a report of each bad row."""
    trip = db.session.get(Trip, trip_id)
    if trip is None:
        raise click.ClickException(f"there is no trip {trip_id}")
    try:
        report = ops.import_roster(CLI, trip, file.read_bytes())
    except ImportRejected as err:
        db.session.rollback()
        for error in err.errors:
            click.echo(str(error), err=True)
        raise click.ClickException(err.message) from None
    except DomainError as err:
        db.session.rollback()
        raise click.ClickException(err.message) from None
    db.session.commit()
    for line in report.changes[:200]:
        click.echo(line)
    if len(report.changes) > 200:
        click.echo(f"... and {len(report.changes) - 200} more changes")
    click.echo(report.summary())

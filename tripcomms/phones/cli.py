"""`flask --app tripcomms phones ...` and `flask --app tripcomms loans ...`"""

from __future__ import annotations

from pathlib import Path

import click
from flask.cli import AppGroup

from tripcomms.audit.operations import CLI
from tripcomms.cli_support import run_operation
from tripcomms.errors import NotFound
from tripcomms.extensions import db
from tripcomms.localtime import parse_local
from tripcomms.phones import operations as ops
from tripcomms.phones.models import ReturnCondition
from tripcomms.phones.queries import describe_lateness, describe_moment, find_phone, overdue_loans
from tripcomms.trips.models import Trip
from tripcomms.trips.operations import find_user_by_email
from tripcomms.types import utcnow

phones_cli = AppGroup("phones", help="The school phone pool.")
loans_cli = AppGroup("loans", help="Phones issued to trips.")


@phones_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(file: Path) -> None:
    """Add every phone in a CSV file (header label,number,serial), or none if any row is wrong.

    Prints one line per phone added; the last line is their ids, separated by spaces.
    """
    if file.stat().st_size > ops.IMPORT_MAX_BYTES * 10:
        # Refused before reading, so that a wrong file of gigabytes is not loaded at all.
        raise click.ClickException("that file is too large for a list of phones")
    data = file.read_bytes()
    phones = run_operation(lambda: ops.import_phones(CLI, data))
    for phone in phones:
        click.echo(f"added {phone.label} ({phone.id})")
    click.echo(" ".join(str(phone.id) for phone in phones))


@phones_cli.command("add")
@click.option("--label", required=True, help='As written on the phone, e.g. "Trip phone 3".')
@click.option("--number", required=True, help="Its mobile number.")
@click.option("--serial", default="", help="Serial number or IMEI.")
def add_command(label: str, number: str, serial: str) -> None:
    """Add one phone to the pool; the last line printed is its id."""
    phone = run_operation(lambda: ops.add_phone(CLI, label=label, number=number, serial=serial))
    click.echo(f"added {phone.label}")
    click.echo(phone.id)


def _phone(label_or_number: str):
    try:
        return find_phone(label_or_number)
    except NotFound as err:
        raise click.ClickException(err.message) from None


@loans_cli.command("issue")
@click.option("--phone", "phone_ref", required=True, help="The phone's label or number.")
@click.option("--trip", "trip_id", required=True, type=int, help="The trip's id.")
@click.option("--to", "email", required=True, help="Email of the leader or staff member.")
@click.option("--due", default=None, help='Due back, "YYYY-MM-DD HH:MM" London time.')
def issue_command(phone_ref: str, trip_id: int, email: str, due: str | None) -> None:
    """Issue a phone to a member of a trip's staff; the last line printed is the loan's id."""

    def operation():
        phone = find_phone(phone_ref)
        trip = db.session.get(Trip, trip_id)
        if trip is None:
            raise NotFound(f"there is no trip {trip_id}")
        holder = find_user_by_email(email)
        due_at = parse_local(due, what="--due") if due else None
        return ops.issue_loan(CLI, phone, trip, holder, due_at=due_at)

    loan = run_operation(operation)
    click.echo(
        f"issued {loan.phone.label} to {loan.holder.name} for {loan.trip.title}, "
        f"due back {describe_moment(loan.due_at)}"
    )
    click.echo(loan.id)


@loans_cli.command("return")
@click.option("--phone", "phone_ref", required=True, help="The phone's label or number.")
@click.option(
    "--condition",
    type=click.Choice([c.value for c in ReturnCondition]),
    default=ReturnCondition.OK.value,
    show_default=True,
)
def return_command(phone_ref: str, condition: str) -> None:
    """Take a phone back. ok: available again; damaged: into repair; lost: marked lost."""
    loan = run_operation(lambda: ops.return_phone(CLI, find_phone(phone_ref), condition=condition))
    click.echo(
        f"{loan.phone.label} returned from {loan.holder.name} ({condition}); "
        f"it is now {loan.phone.status.value}"
    )


@loans_cli.command("overdue")
def overdue_command() -> None:
    """List loans past their due time, one a line; exit 1 if there are any (for a daily job)."""
    now = utcnow()
    late = overdue_loans(now)
    if not late:
        click.echo("no overdue loans")
        return
    for loan in late:
        click.echo(
            f"{loan.phone.label}: {loan.holder.name} ({loan.holder.email}), {loan.trip.title} "
            f"(trip {loan.trip_id}), due {describe_moment(loan.due_at)}, "
            f"{describe_lateness(loan.due_at, now)} late"
        )
    raise SystemExit(1)

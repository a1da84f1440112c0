"""`flask --app tripcomms users ...`"""

from __future__ import annotations

import sys

import click
from flask.cli import AppGroup

from tripcomms.audit.operations import CLI
from tripcomms.auth import operations as ops
from tripcomms.auth.models import Role
from tripcomms.cli_support import run_operation

users_cli = AppGroup("users", help="Staff accounts.")


def _read_password() -> str:
    if sys.stdin.isatty():
        return click.prompt("Password", hide_input=True, confirmation_prompt=True)
    return sys.stdin.readline().rstrip("\r\n")


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--name", required=True)
@click.option(
    "--role",
    "roles",
    multiple=True,
    required=True,
    type=click.Choice([r.value for r in Role]),
    help="Repeat for several roles.",
)
@click.option("--personal-number", "numbers", multiple=True, help="Repeat for several.")
def create_command(email: str, name: str, roles: tuple[str, ...], numbers: tuple[str, ...]):
    """Create a staff account; the password is read from stdin when it is not a terminal."""
    password = _read_password()
    user = run_operation(
        lambda: ops.create_user(
            CLI, email=email, name=name, roles=roles, password=password, personal_numbers=numbers
        )
    )
    click.echo(f"created {user.name} <{user.email}> ({', '.join(sorted(user.roles))})")
    click.echo(user.id)

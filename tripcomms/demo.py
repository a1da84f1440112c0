"""`flask --app tripcomms demo`: a fresh demo database with seeded data, served locally.

Offered as a Flask CLI plugin so that it runs before any configuration exists: it builds its
own app in demo mode, with a database of its own at instance/demo.sqlite.
"""

from __future__ import annotations

import secrets
import sys
from pathlib import Path

import click

from tripcomms.audit.operations import SystemActor

DEMO = SystemActor("demo")
DEMO_PASSWORD = "school-trip-demo"  # noqa: S105 (printed for the demo; never in production)

DEMO_USERS = [
    # (email, name, roles, personal numbers)
    ("office@demo.school", "Olivia Office", ["office"], []),
    ("leader@demo.school", "Liam Leader", ["leader"], ["07911 123456"]),
    ("teacher@demo.school", "Tara Teacher", ["leader"], ["07922 234567"]),
    ("head@demo.school", "Helen Head", ["head"], ["07933 345678"]),
    ("dsl@demo.school", "Dev Safeguarding", ["dsl"], []),
    ("auditor@demo.school", "Aisha Auditor", ["auditor"], []),
    ("admin@demo.school", "Adam Admin", ["admin"], []),
]


def demo_config(instance_path: Path, host: str, port: int) -> dict:
    return {
        "DEMO": True,
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": f"sqlite:///{instance_path / 'demo.sqlite'}",
        "PUBLIC_BASE_URL": f"http://{host}:{port}",
        "SMS_BACKEND": "simulator",
        "TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
        "TWILIO_AUTH_TOKEN": "demo-auth-token",
        "SCHOOL_NAME": "Demo Primary School",
        "OFFICE_PHONE": "+441632960000",
    }


def remove_database(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def seed(app) -> list[tuple[str, str, str]]:
    """Fill an empty, migrated demo database. Returns (role, email, password) for each login."""
    from tripcomms.auth import operations as auth_ops
    from tripcomms.extensions import db

    logins = []
    for email, name, roles, numbers in DEMO_USERS:
        auth_ops.create_user(
            DEMO,
            email=email,
            name=name,
            roles=roles,
            password=DEMO_PASSWORD,
            personal_numbers=numbers,
        )
        logins.append((", ".join(roles), email, DEMO_PASSWORD))
    db.session.commit()
    return logins


@click.command("demo")
@click.option("--yes", is_flag=True, help="Replace an existing demo database without asking.")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True, type=int)
@click.option("--no-serve", is_flag=True, help="Create and seed the database, then exit.")
def demo_command(yes: bool, host: str, port: int, no_serve: bool) -> None:
    """Create instance/demo.sqlite afresh, seed it, and serve the demo on 127.0.0.1:5000."""
    from flask_migrate import upgrade

    from tripcomms import create_app

    probe = create_app({"DEMO": True})
    instance = Path(probe.instance_path)
    database = instance / "demo.sqlite"
    if database.exists() and not yes:
        if not sys.stdin.isatty():
            raise click.ClickException(f"{database} exists; run again with --yes to replace it")
        click.confirm(f"Replace the demo database {database}?", abort=True)
    instance.mkdir(parents=True, exist_ok=True)
    remove_database(database)

    app = create_app(demo_config(instance, host, port))
    with app.app_context():
        upgrade()
        logins = seed(app)

    click.echo("\nDemo logins (every password is the same):")
    for roles, email, password in logins:
        click.echo(f"  {roles:<10} {email:<24} {password}")
    if no_serve:
        return
    click.echo(f"\nOpen http://{host}:{port}/ (Ctrl+C stops the demo)\n")
    app.run(host=host, port=port, use_reloader=False, threaded=True)

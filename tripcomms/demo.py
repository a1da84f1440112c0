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


FIRST_NAMES = [
    "Amelia",
    "Oliver",
    "Isla",
    "George",
    "Ava",
    "Noah",
    "Mia",
    "Arthur",
    "Ivy",
    "Leo",
    "Freya",
    "Oscar",
    "Lily",
    "Harry",
    "Grace",
    "Jack",
    "Sofia",
    "Charlie",
    "Ella",
    "Theo",
    "Rosie",
    "Muhammad",
    "Poppy",
    "Alfie",
    "Evie",
    "Jacob",
    "Zara",
    "Finley",
    "Maya",
    "Henry",
]
LAST_NAMES = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Patel",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Jackson",
    "Clarke",
    "Khan",
    "Lewis",
    "Harris",
    "Martin",
    "Cooper",
    "Hill",
    "Ward",
    "Morris",
    "Moore",
]
CARER_FIRST = ["Sarah", "James", "Emma", "David", "Laura", "Mark", "Priya", "Tom", "Nadia"]


def demo_roster(pupils: range) -> bytes:
    """A roster CSV: 30 pupils, the first 15 with two contacts, 45 contacts in all."""
    lines = [
        "pupil_first_name,pupil_last_name,year_group,contact_name,relationship,mobile,"
        "image_restricted,no_contact"
    ]
    for i in pupils:
        first, last = FIRST_NAMES[i], LAST_NAMES[i]
        restricted = "yes" if i in (4, 17) else "no"
        parents = [("mother", 0), ("father", 1)] if i < 15 else [("carer", 0)]
        for relationship, n in parents:
            carer = f"{CARER_FIRST[(i + n * 4) % len(CARER_FIRST)]} {last}"
            no_contact = "yes" if (i, n) == (9, 1) else "no"
            mobile = f"+4474{i:02d}{n}{i * 37 % 1000:03d}00"
            lines.append(
                f"{first},{last},Year {5 + i % 2},{carer},{relationship},{mobile},"
                f"{restricted},{no_contact}"
            )
    return ("\n".join(lines) + "\n").encode()


def seed(app) -> list[tuple[str, str, str]]:
    """Fill an empty, migrated demo database. Returns (role, email, password) for each login."""
    from datetime import timedelta

    from tripcomms.auth import operations as auth_ops
    from tripcomms.extensions import db
    from tripcomms.phones.demo import seed_demo_phones
    from tripcomms.trips import operations as trip_ops
    from tripcomms.types import utcnow

    logins = []
    users = {}
    for email, name, roles, numbers in DEMO_USERS:
        users[email] = auth_ops.create_user(
            DEMO,
            email=email,
            name=name,
            roles=roles,
            password=DEMO_PASSWORD,
            personal_numbers=numbers,
        )
        logins.append((", ".join(roles), email, DEMO_PASSWORD))

    now = utcnow().replace(second=0, microsecond=0)
    today = trip_ops.create_trip(
        DEMO,
        title="Year 5 and 6 Science Museum",
        destination="Science Museum, London",
        starts_at=now - timedelta(hours=2),
        ends_at=now + timedelta(hours=6),
        leader=users["leader@demo.school"],
        staff=[users["teacher@demo.school"]],
        notes="Coach leaves from the school gates. Packed lunches.",
    )
    next_week = trip_ops.create_trip(
        DEMO,
        title="Year 6 Forest School",
        destination="Hollybank Woods",
        starts_at=now + timedelta(days=7),
        ends_at=now + timedelta(days=7, hours=7),
        leader=users["teacher@demo.school"],
        staff=[users["leader@demo.school"]],
    )
    trip_ops.import_roster(DEMO, today, demo_roster(range(30)))
    trip_ops.import_roster(DEMO, next_week, demo_roster(range(1, 30, 2)))
    seed_demo_phones(DEMO, [today, next_week])
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
    # Werkzeug's server directly: Flask ignores app.run() inside a `flask` command.
    from werkzeug.serving import run_simple

    from tripcomms.relay.outbox import start_in_process

    start_in_process(app)
    run_simple(host, port, app, threaded=True, use_reloader=False)

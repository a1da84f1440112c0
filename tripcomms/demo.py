"""`flask --app tripcomms demo`: a fresh demo database with seeded data, served locally.

Offered as a Flask CLI plugin so that it runs before any configuration exists: it builds its
own app in demo mode, with a database of its own at instance/demo.sqlite.
"""

from __future__ import annotations

import secrets
import sys
import threading
import time
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


# The school's Twilio numbers in the demo: in the database and on the simulated account.
DEMO_TRIP_NUMBERS = ["+447480000001", "+447480000002", "+447480000003"]

DEMO_TEMPLATES = [
    ("Arrived safely", "We have arrived safely at {place}. All well!"),
    ("Coach delayed", "The coach is delayed by about {minutes} minutes. We will text again soon."),
    ("Back at school", "We are back at school. Please collect your child from the {gate} gate."),
    ("Leaving now", "We are leaving {place} now and expect to be back at school at {time}."),
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
        "SIMULATOR_NUMBERS": DEMO_TRIP_NUMBERS,
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

    from tripcomms.approvals.demo import seed_demo_approvals
    from tripcomms.auth import operations as auth_ops
    from tripcomms.extensions import db
    from tripcomms.phones.demo import seed_demo_phones
    from tripcomms.relay import numbers as number_ops
    from tripcomms.relay import operations as relay_ops
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
    seed_demo_approvals(DEMO, [today, next_week], users)
    for number in DEMO_TRIP_NUMBERS:
        number_ops.add_number(DEMO, number)
    number_ops.allocate_number(DEMO, today)
    number_ops.allocate_number(DEMO, next_week)
    for name, body in DEMO_TEMPLATES:
        relay_ops.create_template(users["office@demo.school"], name=name, body=body)
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

    if no_serve:
        _print_logins(logins)
        return
    server = start_serving(app, host, port)
    click.echo(f"Serving on http://{host}:{port}/; texting the day so far through the simulator...")
    try:
        seed_history(app)
    except Exception as err:  # the demo still serves; it only lacks its history
        click.echo(f"The demo's conversation history could not be created: {err}", err=True)
    _print_logins(logins)
    click.echo(
        f"\nOpen http://{host}:{port}/ and, in another tab, http://{host}:{port}/sim/phones "
        "(Ctrl+C stops the demo)\n"
    )
    try:
        while server.thread.is_alive():
            server.thread.join(0.5)
    except KeyboardInterrupt:
        click.echo("Stopping the demo.")
    finally:
        server.stop()


def _print_logins(logins: list[tuple[str, str, str]]) -> None:
    click.echo("\nDemo logins (every password is the same):")
    for roles, email, password in logins:
        click.echo(f"  {roles:<10} {email:<24} {password}")


# --- Serving, and the day so far -------------------------------------------------------------


class DemoServer:
    """The app on a threaded Werkzeug server in a thread, with the outbox sender running.

    Werkzeug's server directly: Flask ignores app.run() inside a `flask` command.
    """

    def __init__(self, app, host: str, port: int) -> None:
        from werkzeug.serving import make_server

        self.app = app
        self.server = make_server(host, port, app, threaded=True)
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="demo-server", daemon=True
        )

    def start(self) -> DemoServer:
        from tripcomms.relay.outbox import start_in_process

        self.thread.start()
        start_in_process(self.app)
        return self

    def stop(self) -> None:
        from tripcomms.relay.outbox import stop_in_process

        stop_in_process(self.app)
        self.app.extensions["simulator"].close()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


def start_serving(app, host: str, port: int) -> DemoServer:
    """Serve ``app`` (built by ``demo_config`` for this host and port) and start its sender."""
    return DemoServer(app, host, port).start()


def settle(app, timeout: float = 60.0) -> None:
    """Wait until the outbox has sent everything and the simulator has delivered it.

    Raises TimeoutError when texts are still on their way after ``timeout`` seconds.
    """
    from sqlalchemy import func, select

    from tripcomms.extensions import db
    from tripcomms.relay.models import Message, Status

    sim = app.extensions["simulator"]
    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            waiting = db.session.scalar(
                select(func.count())
                .select_from(Message)
                .where(Message.status.in_([Status.PENDING, Status.SENDING]))
            )
            db.session.remove()
        if not waiting:
            sim.wait_idle(timeout=max(deadline - time.monotonic(), 0.1))
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{waiting} texts still waiting to be sent")
        time.sleep(0.1)


def seed_history(app) -> None:
    """The day so far on today's trip, through the real relay: the simulator posts signed
    webhooks for the parents' and staff phones' texts, the outbox sends what they cause, and
    one reply is written from the web inbox. Needs the app served (``start_serving``).

    Raises what the gateway, the simulator or the operations raise; GatewayError when the
    numbers cannot be set up.
    """
    from sqlalchemy import select

    from tripcomms.auth.models import User
    from tripcomms.extensions import db
    from tripcomms.phones.models import Loan
    from tripcomms.relay import numbers as number_ops
    from tripcomms.relay import operations as relay_ops
    from tripcomms.relay.gateway import gateway_from_config
    from tripcomms.relay.inbox import people
    from tripcomms.relay.outbox import wake
    from tripcomms.trips.models import Trip, TripState

    sim = app.extensions["simulator"]
    with app.app_context():
        with gateway_from_config(app.config) as gateway:
            number_ops.sync_numbers(DEMO, gateway, app.config["PUBLIC_BASE_URL"])
        db.session.commit()
        trip = next(t for t in db.session.scalars(select(Trip)) if t.state == TripState.IN_PROGRESS)
        number = number_ops.trip_number(trip)
        loans = db.session.scalars(
            select(Loan)
            .where(Loan.trip_id == trip.id, Loan.returned_at.is_(None))
            .order_by(Loan.id)
        ).all()
        leader_phone = next(loan.phone.number for loan in loans if loan.holder_id == trip.leader_id)
        other_phone = next(
            (loan.phone.number for loan in loans if loan.holder_id != trip.leader_id), leader_phone
        )
        everyone = sorted(people(trip).values(), key=lambda p: p.code)
        reachable = [p for p in everyone if p.can_receive]
        first, second, third = reachable[0], reachable[2], reachable[4]
        trip_id, leader_id = trip.id, trip.leader_id
        names = {p.code: (p.contact.mobile, p.pupils[0].first_name) for p in (first, second, third)}
        db.session.remove()

    def text(sender: str, body: str) -> None:
        sim.send_from_handset(sender, number, body)
        settle(app)

    # Morning: the teacher's school phone tells everyone they have arrived (ALL command).
    text(other_phone, "ALL We have arrived at the Science Museum. Everyone is well and excited!")
    # A parent asks; the leader answers from the school phone with the code.
    mobile, child = names[first.code]
    text(mobile, f"Hi, did {child} remember the inhaler? It was on the kitchen table.")
    text(leader_phone, f"#{first.code} Yes, Mrs Taylor has it in the first aid bag. All fine!")
    # Another asks; the leader answers from the web inbox.
    mobile, child = names[second.code]
    text(mobile, f"What time will you be back? {child} has a swimming lesson at 5.")
    with app.app_context():
        leader = db.session.get(User, leader_id)
        trip = db.session.get(Trip, trip_id)
        relay_ops.send_to_contact(
            leader, trip, second.code, "We expect to be back at school by 3:30pm.", via="web"
        )
        db.session.commit()
        db.session.remove()
    wake(app)
    settle(app)
    # A third is still waiting for an answer.
    mobile, child = names[third.code]
    text(mobile, f"Could {child} phone me at lunchtime please? Nothing urgent.")

"""A school with something of everything, for the form fuzz: a user of each role, a trip in
progress with its number, roster, a booked and a loaned phone, a waiting personal-phone
request, a concern, a template, texts in the inbox (one failed, one waiting for review), and
spare rows for the forms that change or end things (a trip to cancel, a user to deactivate).

It is built once for the module: every form is fuzzed against the same school, each signed-in
client kept signed in throughout.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from tests.conftest import BASE_CONFIG, TEST_DATABASE_URL, _empty_postgres, is_postgres
from tests.helpers import FACTORY, PASSWORD, Factory, TripcommsClient, UserRef
from tests.relay.scenario import FakeGateway, Scenario, e164
from tests.trips.rosters import HEADER, mobile
from tripcomms import create_app
from tripcomms.approvals import operations as approval_ops
from tripcomms.auth.models import StaffNumber, User
from tripcomms.extensions import db
from tripcomms.phones import operations as phone_ops
from tripcomms.phones.models import Phone
from tripcomms.relay import numbers as number_ops
from tripcomms.relay import operations as relay_ops
from tripcomms.relay.models import Direction, Kind, Message, Status
from tripcomms.relay.outbox import stop_in_process
from tripcomms.safeguarding import operations as safeguarding_ops
from tripcomms.trips import operations as trip_ops
from tripcomms.trips.models import Contact, Trip
from tripcomms.types import utcnow

TRIP_NUMBER = "+441234000001"
SPARE_NUMBER = "+441234000002"
LOANED_PHONE = "+447400123451"
BOOKED_PHONE = "+447400123452"
SPARE_PHONE = "+447400123453"
LEADER_OWN = e164(900)
HEAD_OWN = e164(800)
ROLES = ("admin", "office", "head", "dsl", "auditor", "leader")

FUZZ_CONFIG = {
    **BASE_CONFIG,
    # Forms are fuzzed, not CSRF: a generated post with no token would only ever get 400.
    "WTF_CSRF_ENABLED": False,
    # The sign-in limiter would answer most generated sign-ins 429 before the form is read.
    "RATELIMIT_ENABLED": False,
    # Nothing listens here: the simulated handsets' webhooks and "Point numbers at tripcomms"
    # fail to connect at once instead of reaching whatever serves on port 5000.
    "PUBLIC_BASE_URL": "http://127.0.0.1:9",
    "NOTIFY_FROM": "+441234000050",
}


@dataclass
class World:
    app: object
    users: dict[str, UserRef] = field(default_factory=dict)
    clients: dict[str, TripcommsClient] = field(default_factory=dict)
    ids: dict[str, list[int]] = field(default_factory=dict)

    def id(self, name: str) -> int:
        return self.ids[name][0]


def _login(app, user: UserRef) -> TripcommsClient:
    client = app.test_client()
    response = client.post("/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 303, response.get_data(as_text=True)
    return client


def build_world(tmp_path_factory, migrated_database: str) -> World:
    if is_postgres():
        url = TEST_DATABASE_URL
    else:
        path = tmp_path_factory.mktemp("forms") / "forms.sqlite"
        shutil.copyfile(migrated_database, path)
        url = f"sqlite:///{path}"
    app = create_app({**FUZZ_CONFIG, "DATABASE_URL": url})
    app.test_client_class = TripcommsClient
    if is_postgres():
        _empty_postgres(app)
    factory = Factory(app)
    w = World(app)
    w.users = {
        "admin": factory.user("admin", name="Ada Admin"),
        "office": factory.user("office", name="Olive Office"),
        "head": factory.user("head", name="Helen Head", personal_numbers=(HEAD_OWN,)),
        "dsl": factory.user("dsl", name="Dee Safeguarding"),
        "auditor": factory.user("auditor", name="Audrey Auditor"),
        "leader": factory.user("leader", name="Liam Leader", personal_numbers=(LEADER_OWN,)),
        "helper": factory.user("leader", name="Hana Helper"),
        # Changes its own password; another account is deactivated and reset by the admin.
        "self": factory.user("leader", name="Sol Self"),
        "target": factory.user("leader", "office", name="Tara Target"),
    }
    leader, helper = w.users["leader"], w.users["helper"]
    trip_id = factory.trip(leader, title="Science Museum", staff=(helper, w.users["self"]))
    spare_trip = factory.trip(
        leader,
        title="Farm visit",
        starts_at=utcnow() + timedelta(days=10),
        ends_at=utcnow() + timedelta(days=10, hours=8),
    )
    with app.app_context():
        trip = db.session.get(Trip, trip_id)
        number_ops.add_number(FACTORY, TRIP_NUMBER)
        number_ops.add_number(FACTORY, SPARE_NUMBER)
        number_ops.allocate_number(FACTORY, trip)
        trip_ops.import_roster(
            FACTORY,
            trip,
            "\n".join(
                [
                    f"{HEADER},image_restricted,no_contact",
                    f"Sam,Jones,Year 6,Mary Jones,mother,{mobile(1)},no,no",
                    f"Sam,Jones,Year 6,Tom Jones,father,{mobile(2)},no,no",
                    f"Ella,Smith,Year 5,Ann Smith,carer,{mobile(3)},yes,yes",
                ]
            ).encode(),
        )
        loaned = phone_ops.add_phone(FACTORY, label="Trip phone 1", number=LOANED_PHONE)
        booked = phone_ops.add_phone(FACTORY, label="Trip phone 2", number=BOOKED_PHONE)
        spare = phone_ops.add_phone(FACTORY, label="Trip phone 3", number=SPARE_PHONE)
        leader_user = db.session.get(User, leader.id)
        loan = phone_ops.issue_loan(FACTORY, loaned, trip, leader_user)
        booking = phone_ops.book_phones(FACTORY, trip, phones=[booked])[0]
        approval = approval_ops.request_approval(
            leader_user, trip, leader_user, LEADER_OWN, "All school phones are out"
        )
        template = relay_ops.create_template(
            db.session.get(User, w.users["office"].id),
            name="Coach late",
            body="The coach is {minutes} minutes late.",
        )
        db.session.commit()
        w.ids.update(
            trip=[trip_id],
            spare_trip=[spare_trip],
            phone=[spare.id],
            phones=[loaned.id, booked.id, spare.id],
            loan=[loan.id],
            booking=[booking.id],
            approval=[approval.id],
            template=[template.id],
        )

    # Texts: a parent's question, the leader's answer from the school phone (it will fail), a
    # stranger's text for the office to review.
    texting = Scenario(app, app.test_client(), factory, trip_id, leader, helper)
    texting.gateway = FakeGateway()
    texting.text(e164(1), "Is the coach on time?")
    texting.text(LOANED_PHONE, "#1 Yes, back at 3")
    texting.text(e164(777), "who is this?")
    texting.send_all()
    with app.app_context():
        reply = db.session.scalar(select(Message).where(Message.kind == Kind.TO_CONTACT))
        reply.status = Status.FAILED
        review = db.session.scalar(
            select(Message).where(Message.direction == Direction.IN, Message.needs_review)
        )
        mary = db.session.scalar(select(Contact).where(Contact.mobile == e164(1)))
        concern = safeguarding_ops.report_concern(
            db.session.get(User, w.users["head"].id),
            category="other",
            description="A parent sounded worried",
            trip=db.session.get(Trip, trip_id),
            contact=mary,
        )
        db.session.commit()
        w.ids.update(
            failed_message=[reply.id],
            review_message=[review.id],
            message=list(db.session.scalars(select(Message.id))),
            concern=[concern.id],
            contact=[mary.id],
            staff_number=list(db.session.scalars(select(StaffNumber.id))),
            user=[u.id for u in w.users.values()],
            target_user=[w.users["target"].id],
            leader_ids=[leader.id, helper.id],
            all_phones=list(db.session.scalars(select(Phone.id))),
        )
    app.extensions["simulator"].add_number(TRIP_NUMBER)
    w.clients = {role: _login(app, w.users[role]) for role in (*ROLES, "self")}
    w.clients["anonymous"] = app.test_client()
    return w


def close_world(w: World) -> None:
    stop_in_process(w.app)
    w.app.extensions["simulator"].close()
    with w.app.app_context():
        db.session.remove()
        db.engine.dispose()

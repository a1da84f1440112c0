"""A small school with one of everything, built through the operations and the webhooks, so
that every route with an id in its address can be pointed at a real row.

Trip A ("the trip") is in progress with a leader, a roster, a trip number, a school phone on
loan and another booked, texts in and out (one failed), a broadcast, a personal-phone request,
a concern and a text in the office's review queue. Trip B has another leader and nothing else:
its leader must see none of trip A's things. ``texts`` puts words into every field a person
writes (titles, names, labels, bodies, reasons), so that the escaping tests can build the same
world with script payloads in it.
"""

from __future__ import annotations

import csv
import io
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select

from tests.helpers import FACTORY, Factory, UserRef
from tests.relay.scenario import FakeGateway, Scenario
from tests.trips.rosters import HEADER, mobile
from tripcomms.approvals import operations as approval_ops
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.mobile import normalise_number
from tripcomms.phones import operations as phone_ops
from tripcomms.relay import numbers as number_ops
from tripcomms.relay import operations as relay_ops
from tripcomms.relay.forms import new_form_key
from tripcomms.relay.models import Direction, Message, Status
from tripcomms.relay.outbox import OutboxSender
from tripcomms.safeguarding import operations as concern_ops
from tripcomms.trips import operations as trip_ops
from tripcomms.trips.models import Trip, TripContact
from tripcomms.types import utcnow

TRIP_NUMBER = "+447480000101"
SCHOOL_PHONE = "+447400100001"
SPARE_PHONE = "+447400100002"
LEADER_OWN = "+447911100001"
HEAD_OWN = "+447933300001"
PARENT_1 = normalise_number(mobile(101))
PARENT_2 = normalise_number(mobile(102))
STRANGER = normalise_number(mobile(199))

ROLES = ("anon", "office", "leader", "other", "head", "dsl", "auditor", "admin")


# Script payloads, for the escaping tests.
SCRIPT = "<script>alert(1)</script>"
IMG = '"><img src=x onerror=alert(1)>'
JS_URL = "javascript:alert(1)"
TEMPLATE_SYNTAX = "{{7*7}}"
PAYLOAD = f"{SCRIPT}{IMG} {JS_URL} {TEMPLATE_SYNTAX}"


def with_payload(kind: str, text: str) -> str:
    """Each field's ordinary words followed by the payloads that fit its length and rules."""
    if kind == "label":  # phone labels: 60 characters
        return f"P{text.split()[-1]} {SCRIPT}{IMG}"
    if kind == "template":  # a template's name (80) and text: curly brackets are placeholders
        return f"{text} {SCRIPT}{IMG}"
    return f"{text} {PAYLOAD}"


def plain(kind: str, text: str) -> str:
    """The words of the ordinary world: each field as written."""
    return text


@dataclass
class World:
    """Users by role column, and the ids that fill the routes' addresses."""

    users: dict[str, UserRef]
    ids: dict[str, object] = field(default_factory=dict)

    def user(self, role: str) -> UserRef | None:
        return self.users.get(role)


def _roster(texts: Callable[[str, str], str]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADER.split(","))
    writer.writerow(
        [
            texts("pupil", "Sam"),
            "Jones",
            "Year 6",
            texts("contact", "Mary Jones"),
            "mother",
            PARENT_1,
        ]
    )
    writer.writerow(["Ella", texts("pupil", "Smith"), "Year 5", "Ann Smith", "carer", PARENT_2])
    return out.getvalue().encode()


def build_world(app, factory: Factory, client, texts=plain) -> World:
    """Build the school; ``client`` posts the signed webhooks (it is left signed out)."""
    users = {
        "office": factory.user("office", name=texts("user", "Olive Office")),
        "leader": factory.user(
            "leader", name=texts("user", "Liam Leader"), personal_numbers=(LEADER_OWN,)
        ),
        "other": factory.user("leader", name=texts("user", "Otto Other")),
        "head": factory.user(
            "head", name=texts("user", "Helen Head"), personal_numbers=(HEAD_OWN,)
        ),
        "dsl": factory.user("dsl", name=texts("user", "Dee Safeguarding")),
        "auditor": factory.user("auditor", name=texts("user", "Audrey Auditor")),
        "admin": factory.user("admin", name=texts("user", "Ada Admin")),
    }
    victim = factory.user("office", name=texts("user", "Vic Spare"))
    world = World(users)
    trip_id = factory.trip(
        users["leader"],
        title=texts("title", "Science Museum"),
        destination=texts("destination", "South Kensington"),
    )
    other_trip_id = factory.trip(
        users["other"], title=texts("title", "Farm visit"), destination="Home Farm"
    )
    now = utcnow()

    with app.app_context():
        trip = db.session.get(Trip, trip_id)
        office = db.session.get(User, users["office"].id)
        leader = db.session.get(User, users["leader"].id)
        trip.notes = texts("notes", "Packed lunches")
        trip_ops.import_roster(office, trip, _roster(texts))
        number_ops.add_number(FACTORY, TRIP_NUMBER)
        number_ops.allocate_number(office, trip)
        loaned = phone_ops.add_phone(
            office,
            label=texts("label", "Trip phone 1"),
            number=SCHOOL_PHONE,
            notes=texts("notes", "Cracked case"),
        )
        booked = phone_ops.add_phone(
            office, label=texts("label", "Trip phone 2"), number=SPARE_PHONE
        )
        loan = phone_ops.issue_loan(
            office, loaned, trip, leader, condition_notes=texts("notes", "Charged")
        )
        (booking,) = phone_ops.book_phones(
            office,
            trip,
            phones=[booked],
            starts_at=now + timedelta(hours=1),
            ends_at=trip.ends_at,
        )
        template = relay_ops.create_template(
            office, name=texts("template", "Running late"), body=texts("template", "We are late")
        )
        db.session.commit()
        code = db.session.scalar(
            select(TripContact.code)
            .join(TripContact.contact)
            .where(TripContact.trip_id == trip.id)
            .where(TripContact.contact.has(mobile=PARENT_1))
        )
        contact_id = db.session.scalar(
            select(TripContact.contact_id).where(
                TripContact.trip_id == trip.id, TripContact.code == code
            )
        )
        world.ids.update(
            trip=trip_id,
            other_trip=other_trip_id,
            phone=loaned.id,
            booked_phone=booked.id,
            loan=loan.id,
            booking=booking.id,
            template=template.id,
            code=code,
            contact=contact_id,
            handset=f"contact-{contact_id}",
            user=victim.id,
        )

    # Texts arrive as Twilio posts them: a parent's, and a stranger's for the review queue.
    texting = Scenario(app, client, factory)
    parent_sid = texting.text(PARENT_1, texts("inbound", "Is Sam OK?"), to=TRIP_NUMBER)
    stranger_sid = texting.text(STRANGER, texts("inbound", "Who is this?"), to=TRIP_NUMBER)

    with app.app_context():
        trip = db.session.get(Trip, trip_id)
        leader = db.session.get(User, users["leader"].id)
        inbound = db.session.scalar(select(Message).where(Message.twilio_sid == parent_sid))
        review = db.session.scalar(select(Message).where(Message.twilio_sid == stranger_sid))
        assert inbound is not None and inbound.trip_id == trip_id
        assert review is not None and review.needs_review
        reply, _ = relay_ops.send_from_web(
            leader, trip, code, texts("reply", "Sam is fine"), request_key=new_form_key()
        )
        outcome = relay_ops.broadcast_from_web(
            leader, trip, texts("broadcast", "Back at 3pm"), request_key=new_form_key()
        )
        approval = approval_ops.request_approval(
            leader,
            trip,
            leader,
            LEADER_OWN,
            texts("reason", "The school phone has no signal"),
            starts_at=now,
            ends_at=trip.ends_at,
        )
        concern = concern_ops.report_concern(
            leader,
            category="other",
            description=texts("concern", "The parent sounded worried"),
            message=inbound,
        )
        db.session.commit()
        world.ids.update(
            parent_message=inbound.id,
            review_message=review.id,
            failed=reply.id,
            broadcast=outcome.broadcast.id,
            approval=approval.id,
            concern=concern.id,
        )

    # The outbox sends everything; the reply to the parent then fails on its way.
    sender = OutboxSender(app, gateway=FakeGateway(first_sid=secrets.randbelow(10**9)))
    while sender.run_once():
        pass
    with app.app_context():
        failed = db.session.get(Message, world.ids["failed"])
        assert failed.direction == Direction.OUT and failed.twilio_sid
        failed_sid = failed.twilio_sid
    assert texting.status(failed_sid, "failed", 30003).status_code == 204
    with app.app_context():
        assert db.session.get(Message, world.ids["failed"]).status == Status.FAILED
    world.ids.update(
        account=app.config["TWILIO_ACCOUNT_SID"],
        sid=failed_sid,
        number_sid="PN" + "0" * 32,
        media_sid="ME" + "0" * 32,
    )
    return world

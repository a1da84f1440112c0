"""A trip in progress, ready to text through the simulator: a trip number on the simulated
account, a roster, and a school phone really on loan to its leader (the phone pool's loan is
what makes it a relay endpoint)."""

from __future__ import annotations

from dataclasses import dataclass

from tests.helpers import FACTORY, UserRef
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.mobile import normalise_number
from tripcomms.phones import operations as phone_ops
from tripcomms.relay import numbers as number_ops
from tripcomms.trips import operations as trip_ops
from tripcomms.trips.models import Contact, Trip

TRIP_NUMBER = "+447480000001"
SCHOOL_PHONE = "+447400123451"
LEADER_OWN = "+447911123456"
HEAD_OWN = "+447933345678"
ROSTER = (
    "pupil_first_name,pupil_last_name,year_group,contact_name,relationship,mobile\n"
    "Sam,Jones,Year 6,Mary Jones,mother,07400 000001\n"
    "Sam,Jones,Year 6,Tom Jones,father,07400 000002\n"
    "Ella,Smith,Year 5,Ann Smith,carer,07400 000003\n"
)
MARY, TOM, ANN = (normalise_number(f"07400 00000{n}") for n in (1, 2, 3))


@dataclass
class TextingTrip:
    trip_id: int
    leader: UserRef
    head: UserRef
    contact_ids: dict[str, int]  # by E.164 number


def texting_trip(app, factory, sim) -> TextingTrip:
    leader = factory.user(
        "leader", name="Liam Leader", email="liam@school.test", personal_numbers=(LEADER_OWN,)
    )
    head = factory.user(
        "head", name="Helen Head", email="helen@school.test", personal_numbers=(HEAD_OWN,)
    )
    trip_id = factory.trip(leader, title="Science Museum")
    sim.add_number(TRIP_NUMBER)
    with app.app_context():
        trip = db.session.get(Trip, trip_id)
        trip_ops.import_roster(FACTORY, trip, ROSTER.encode())
        number_ops.add_number(FACTORY, TRIP_NUMBER)
        number_ops.allocate_number(FACTORY, trip)
        phone = phone_ops.add_phone(FACTORY, label="Trip phone 1", number=SCHOOL_PHONE)
        phone_ops.issue_loan(FACTORY, phone, trip, db.session.get(User, leader.id))
        db.session.commit()
        contacts = {c.mobile: c.id for c in db.session.query(Contact)}
    return TextingTrip(trip_id, leader, head, contacts)

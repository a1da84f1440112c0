"""School phones on loan are the trip's endpoints: issue one and it relays, return it and it
no longer does."""

from sqlalchemy import select

from tests.helpers import FACTORY
from tests.relay.scenario import TRIP_NUMBER, e164
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.phones import operations as phone_ops
from tripcomms.phones.models import Phone
from tripcomms.relay.models import Kind
from tripcomms.trips.models import Trip

LOANED = "+447500000077"


def test_a_loaned_school_phone_is_an_endpoint_until_returned(scenario, app):
    scenario.endpoints.clear()  # only real loans from here on
    with app.app_context():
        phone = phone_ops.add_phone(FACTORY, label="Trip phone 7", number=LOANED)
        phone_ops.issue_loan(
            FACTORY,
            phone,
            db.session.get(Trip, scenario.trip_id),
            db.session.get(User, scenario.leader.id),
        )
        db.session.commit()
    scenario.text(e164(1), "Hello from Mary")
    assert [m.to_number for m in scenario.outbound(kind=Kind.FORWARD)] == [LOANED]
    scenario.text(LOANED, "#1 Hi Mary")
    assert [m.body for m in scenario.outbound(kind=Kind.TO_CONTACT)] == ["Hi Mary"]
    assert scenario.outbound(kind=Kind.TO_CONTACT)[0].from_number == TRIP_NUMBER

    with app.app_context():
        phone = db.session.scalar(select(Phone).where(Phone.number == LOANED))
        phone_ops.return_phone(FACTORY, phone, condition="ok")
        db.session.commit()
    scenario.text(LOANED, "#1 still here?")
    inbound = scenario.inbound()[-1]
    assert inbound.kind == Kind.FROM_STAFF_UNAPPROVED  # a school SIM, no longer this trip's
    assert len(scenario.outbound(kind=Kind.TO_CONTACT)) == 1


def test_school_sim_numbers_are_blocked_in_messages_to_parents(scenario, app):
    with app.app_context():
        phone_ops.add_phone(FACTORY, label="Trip phone 8", number="+447500000088")
        db.session.commit()
    scenario.text("+447500000001", "#1 ring 07500 000088 if lost")
    assert scenario.to(e164(1)) == []
    assert "school phone's own number" in scenario.to("+447500000001")[-1]

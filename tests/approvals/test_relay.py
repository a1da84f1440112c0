"""An approved personal number is an endpoint of its trip, only while the approval is in force:
parents' texts reach it, its commands are relayed from the trip number, and outside its window
or after revocation it is refused like any unapproved staff phone."""

from datetime import timedelta

from sqlalchemy import select, update

from tests.approvals.staff import LEADER_OWN
from tests.relay.scenario import TRIP_NUMBER, e164
from tripcomms.approvals.models import PersonalPhoneApproval
from tripcomms.audit.models import AuditEvent
from tripcomms.extensions import db
from tripcomms.relay.endpoints import endpoints_for
from tripcomms.relay.models import Kind
from tripcomms.trips.models import Trip
from tripcomms.trips.panels import readiness
from tripcomms.types import utcnow

MARY = e164(1)
REFUSAL = "Not sent: this phone is not approved for this trip"


def approved(people, **window) -> int:
    approval_id = people.ask(**window)
    people.approve(approval_id)
    return approval_id


def test_in_force_the_personal_phone_relays_both_ways(scenario, people, app):
    scenario.endpoints.clear()  # no school phone: the personal phone is the only endpoint
    approval_id = approved(people)
    with app.app_context():
        [endpoint] = endpoints_for(db.session.get(Trip, people.trip_id), utcnow()).values()
    assert endpoint.number == LEADER_OWN
    assert endpoint.label == "Liam Leader's own phone"
    assert endpoint.personal
    assert endpoint.source_id == approval_id

    scenario.text(MARY, "Is Sam warm enough?")
    [forward] = scenario.outbound(kind=Kind.FORWARD)
    assert (forward.to_number, forward.from_number) == (LEADER_OWN, TRIP_NUMBER)
    assert forward.body.startswith("#1 Mary Jones (Sam J.): Is Sam warm enough?")

    scenario.text(LEADER_OWN, "#1 Yes, coats on")
    [reply] = scenario.outbound(kind=Kind.TO_CONTACT)
    assert (reply.to_number, reply.from_number, reply.body) == (MARY, TRIP_NUMBER, "Yes, coats on")
    assert scenario.inbound()[-1].kind == Kind.COMMAND


def test_first_use_is_audited_once(scenario, people, app):
    approval_id = approved(people)
    scenario.text(MARY, "Hello")
    scenario.text(LEADER_OWN, "#1 Hi")
    scenario.text(MARY, "Thanks")
    events = people.audit("approval.first_used")
    assert len(events) == 1
    forward = scenario.outbound(kind=Kind.FORWARD, to_number=LEADER_OWN)[0]
    assert events[0].data["message_id"] == forward.id
    assert events[0].data["direction"] == "out"
    assert people.approval(approval_id).first_used_at is not None


def test_first_use_can_be_a_command_from_the_phone(scenario, people, app):
    approved(people)
    scenario.text(LEADER_OWN, "LIST")
    [event] = people.audit("approval.first_used")
    assert event.data["message_id"] == scenario.inbound()[-1].id
    assert event.data["direction"] == "in"


def test_school_phones_do_not_count_as_first_use(scenario, people, app):
    approved(people, starts_at=utcnow() + timedelta(hours=1))
    scenario.text(MARY, "Hello")  # reaches the school phone only
    assert people.audit("approval.first_used") == []


def test_before_its_window_the_phone_is_refused(scenario, people, app):
    approved(people, starts_at=utcnow() + timedelta(hours=1))
    scenario.text(LEADER_OWN, "#1 Coach is early")
    inbound = scenario.inbound()[-1]
    assert inbound.kind == Kind.FROM_STAFF_UNAPPROVED
    assert scenario.to(MARY) == []
    assert scenario.to(LEADER_OWN)[-1].startswith(REFUSAL)
    assert "ask the Headteacher" in scenario.to(LEADER_OWN)[-1]


def test_after_its_window_the_phone_is_refused(scenario, people, app):
    approval_id = approved(people)
    with app.app_context():
        table = PersonalPhoneApproval.__table__
        db.session.execute(
            update(table)
            .where(table.c.id == approval_id)
            .values(ends_at=utcnow() - timedelta(minutes=1))
        )
        db.session.commit()
    scenario.text(LEADER_OWN, "#1 Back soon")
    assert scenario.inbound()[-1].kind == Kind.FROM_STAFF_UNAPPROVED
    assert scenario.to(MARY) == []
    scenario.text(MARY, "Where are you?")
    assert LEADER_OWN not in [m.to_number for m in scenario.outbound(kind=Kind.FORWARD)]


def test_after_revocation_the_phone_is_refused(scenario, people, app):
    approval_id = approved(people)
    scenario.text(LEADER_OWN, "#1 On our way")
    assert scenario.to(MARY) == ["On our way"]
    people.revoke(approval_id)
    scenario.text(LEADER_OWN, "#1 Nearly there")
    assert scenario.inbound()[-1].kind == Kind.FROM_STAFF_UNAPPROVED
    assert scenario.to(MARY) == ["On our way"]
    assert scenario.to(LEADER_OWN)[-1].startswith(REFUSAL)
    with app.app_context():
        # The Headteacher sees the attempt (the relay's own home section lists these).
        received = db.session.scalars(
            select(AuditEvent).where(AuditEvent.action == "message.received")
        ).all()
        assert received[-1].data["kind"] == Kind.FROM_STAFF_UNAPPROVED


def test_a_cancelled_trip_ends_the_endpoint(scenario, people, app):
    from tests.helpers import FACTORY
    from tripcomms.trips import operations as trip_ops

    approved(people)
    with app.app_context():
        trip = db.session.get(Trip, people.trip_id)
        trip_ops.cancel_trip(FACTORY, trip, "Snow")
        db.session.commit()
        assert [e for e in endpoints_for(trip, utcnow()).values() if e.personal] == []


def test_readiness_counts_an_approval_in_force(scenario, people, app):
    def phones_item():
        with app.app_context():
            items = readiness(db.session.get(Trip, people.trip_id))
            return next(i for i in items if i.label == "School phones issued")

    assert not phones_item().ok
    approval_id = approved(people)
    item = phones_item()
    assert item.ok
    assert item.detail == "none on loan; 1 personal phone approved"
    people.revoke(approval_id)
    assert not phones_item().ok

"""Asking, deciding, revoking and expiry: the rules, the states and the audit trail."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.approvals.staff import DEPUTY_OWN, HEAD_OWN, HELPER_OWN, LEADER_OWN, NOTIFY
from tests.helpers import FACTORY
from tests.relay.scenario import e164
from tripcomms.approvals import operations as ops
from tripcomms.approvals.models import ApprovalState, PersonalPhoneApproval
from tripcomms.audit.operations import verify_chain
from tripcomms.auth.models import User
from tripcomms.errors import Conflict, InvalidInput, PolicyError
from tripcomms.extensions import db
from tripcomms.phones import operations as phone_ops
from tripcomms.relay.models import Direction, Kind, Message, Status
from tripcomms.relay.numbers import relay_window
from tripcomms.trips import operations as trip_ops
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow


def notifications(app) -> list[Message]:
    with app.app_context():
        rows = list(
            db.session.scalars(
                select(Message).where(Message.kind == Kind.NOTIFY).order_by(Message.id)
            )
        )
        db.session.expunge_all()
        return rows


def test_a_request_defaults_to_the_relay_window_and_asks_every_other_head(app, people):
    approval_id = people.ask()
    approval = people.approval(approval_id)
    with app.app_context():
        window = relay_window(db.session.get(Trip, people.trip_id))
    assert (approval.starts_at, approval.ends_at) == window
    assert approval.state == ApprovalState.PENDING
    assert approval.number == LEADER_OWN
    assert approval.user_id == approval.requested_by_id == people.leader.id
    assert approval.school_phones_free == 0

    texts = notifications(app)
    assert sorted(m.to_number for m in texts) == sorted([HEAD_OWN, DEPUTY_OWN])
    assert {m.from_number for m in texts} == {NOTIFY}
    assert {m.status for m in texts} == {Status.PENDING}  # the outbox sends them
    assert texts[0].body == (
        "Trip Science Museum: Liam Leader asks to use a personal phone (Both school phones "
        f"are with the other group). Reply APPROVE {approval_id} or DENY {approval_id} <reason>."
    )
    [event] = people.audit()
    assert event.action == "approval.requested"
    assert event.data["school_phones_free"] == 0
    assert event.data["texts"] == sorted(m.id for m in texts)
    assert LEADER_OWN not in str(event.data)  # ids, not numbers


def test_a_free_school_phone_is_noted_and_told_to_the_head(app, people):
    with app.app_context():
        phone_ops.add_phone(FACTORY, label="Trip phone 9", number="07400 999001")
        db.session.commit()
    approval_id = people.ask()
    assert people.approval(approval_id).school_phones_free == 1
    assert "A school phone is free then." in notifications(app)[0].body


def test_a_phone_on_loan_elsewhere_is_not_free(app, people, factory):
    other = factory.trip(title="Farm")
    with app.app_context():
        phone = phone_ops.add_phone(FACTORY, label="Trip phone 9", number="07400 999001")
        trip = db.session.get(Trip, other)
        phone_ops.issue_loan(FACTORY, phone, trip, trip.leader)
        db.session.commit()
    assert people.approval(people.ask()).school_phones_free == 0


def test_the_office_asks_on_behalf_of_staff(app, people):
    approval_id = people.ask(people.helper, HELPER_OWN, actor=people.office)
    approval = people.approval(approval_id)
    assert (approval.user_id, approval.requested_by_id) == (people.helper.id, people.office.id)
    assert people.audit()[0].data["on_behalf"] is True


def test_a_request_for_a_head_is_not_texted_to_that_head(app, people, factory):
    trip = factory.trip(people.head, title="Zoo")
    people.ask(people.head, HEAD_OWN, trip_id=trip)
    assert [m.to_number for m in notifications(app)] == [DEPUTY_OWN]


@pytest.mark.parametrize(
    ("change", "error", "field"),
    [
        ({"reason": "   "}, InvalidInput, "reason"),
        ({"number": e164(951)}, PolicyError, "number"),  # the deputy's number, not the leader's
        ({"number": "07400 123"}, InvalidInput, "number"),
        ({"starts_at": -30}, InvalidInput, "starts_at"),  # before the relay window opens
        ({"ends_at": 30}, InvalidInput, "ends_at"),  # after it closes
        ({"starts_at": 60 * 5, "ends_at": 60 * 4}, InvalidInput, "ends_at"),
    ],
)
def test_bad_requests_change_nothing(app, people, change, error, field):
    with app.app_context():
        trip = db.session.get(Trip, people.trip_id)
        window = relay_window(trip)
        kwargs = {"number": LEADER_OWN, "reason": "Signal"}
        kwargs.update({k: v for k, v in change.items() if k in ("number", "reason")})
        times = {}
        if "starts_at" in change:
            times["starts_at"] = window.opens_at + timedelta(minutes=change["starts_at"])
        if "ends_at" in change:
            base = window.opens_at if "starts_at" in change else window.closes_at
            times["ends_at"] = base + timedelta(minutes=change["ends_at"])
        leader = db.session.get(User, people.leader.id)
        with pytest.raises(error) as caught:
            ops.request_approval(leader, trip, leader, kwargs["number"], kwargs["reason"], **times)
        db.session.rollback()
        assert caught.value.field == field
        assert db.session.scalar(select(PersonalPhoneApproval)) is None
    assert people.actions() == []
    assert notifications(app) == []


def test_the_window_must_lie_inside_the_trip_window(app, people):
    with app.app_context():
        trip = db.session.get(Trip, people.trip_id)
        window = relay_window(trip)
        leader = db.session.get(User, people.leader.id)
        with pytest.raises(InvalidInput, match="within the trip's relay window"):
            ops.request_approval(
                leader,
                trip,
                leader,
                LEADER_OWN,
                "Signal",
                starts_at=window.opens_at - timedelta(days=1),
                ends_at=window.closes_at,
            )


def test_a_leader_asks_only_for_their_own_phone(app, people):
    with pytest.raises(PolicyError, match="only for your own phone"):
        people.ask(people.helper, HELPER_OWN, actor=people.leader)


def test_only_the_trips_staff_may_be_given_a_phone(app, people, factory):
    outsider = factory.user("leader", personal_numbers=("07400 888001",))
    with pytest.raises(PolicyError, match="not on this trip's staff"):
        people.ask(outsider, "07400 888001", actor=people.office)


def test_no_request_for_a_cancelled_trip(app, people):
    with app.app_context():
        trip_ops.cancel_trip(FACTORY, db.session.get(Trip, people.trip_id), "Coach broke down")
        db.session.commit()
    with pytest.raises(Conflict, match="cancelled"):
        people.ask()


def test_one_open_request_per_phone_and_time(app, people):
    first = people.ask()
    with pytest.raises(Conflict, match=f"request {first}"):
        people.ask()
    people.approve(first)
    with pytest.raises(Conflict):
        people.ask()


def test_approve_deny_and_revoke_are_audited_and_told_to_the_owner(app, people):
    approval_id = people.ask()
    people.approve(approval_id, conditions="Only until the coach is back")
    approval = people.approval(approval_id)
    assert approval.state == ApprovalState.APPROVED
    assert approval.decided_by_id == people.head.id
    assert approval.decided_via == "web"
    assert approval.decision_note == "Only until the coach is back"
    assert approval.in_force
    told = notifications(app)[-1]
    assert told.to_number == LEADER_OWN
    assert "approved your own phone" in told.body
    assert "Conditions: Only until the coach is back" in told.body

    people.revoke(approval_id, "A school phone is back")
    approval = people.approval(approval_id)
    assert approval.state == ApprovalState.REVOKED
    assert approval.revoked_by_id == people.head.id
    assert not approval.in_force
    assert "withdrawn" in notifications(app)[-1].body
    assert people.actions() == ["approval.requested", "approval.approved", "approval.revoked"]
    approved = people.audit()[1]
    assert approved.actor_id == people.head.id
    assert approved.data["via"] == "web"
    assert approved.data["decision_seconds"] >= 0
    with app.app_context():
        assert verify_chain().ok


def test_deny_needs_a_reason(app, people):
    approval_id = people.ask()
    with app.app_context():
        approval = db.session.get(PersonalPhoneApproval, approval_id)
        head = db.session.get(User, people.head.id)
        with pytest.raises(InvalidInput) as caught:
            ops.deny(head, approval, "  ")
        assert caught.value.field == "reason"
        db.session.rollback()
        ops.deny(head, approval, "Borrow Trip phone 4 from the office")
        db.session.commit()
    approval = people.approval(approval_id)
    assert approval.state == ApprovalState.DENIED
    assert approval.decision_note == "Borrow Trip phone 4 from the office"
    assert "did not approve" in notifications(app)[-1].body


def test_deciding_twice_is_refused(app, people):
    approval_id = people.ask()
    people.approve(approval_id)
    with pytest.raises(Conflict, match="already approved"):
        people.approve(approval_id, by=people.deputy)
    with app.app_context(), pytest.raises(Conflict, match="already approved"):
        ops.deny(
            db.session.get(User, people.deputy.id),
            db.session.get(PersonalPhoneApproval, approval_id),
            "No",
        )
    assert people.approval(approval_id).decided_by_id == people.head.id
    assert people.actions().count("approval.approved") == 1


def test_a_head_never_decides_their_own_request(app, people, factory):
    trip = factory.trip(people.head, title="Zoo")
    approval_id = people.ask(people.head, HEAD_OWN, trip_id=trip)
    with pytest.raises(PolicyError, match="another Headteacher"):
        people.approve(approval_id, by=people.head)
    assert people.approval(approval_id).state == ApprovalState.PENDING
    people.approve(approval_id, by=people.deputy)
    assert people.approval(approval_id).state == ApprovalState.APPROVED


def test_only_a_head_decides_or_revokes(app, people):
    approval_id = people.ask()
    for who in (people.office, people.helper, people.leader):
        with pytest.raises(PolicyError, match="only the Headteacher"):
            people.approve(approval_id, by=who)
    with app.app_context(), pytest.raises(PolicyError):
        ops.approve(FACTORY, db.session.get(PersonalPhoneApproval, approval_id))
    people.approve(approval_id)
    with app.app_context(), pytest.raises(PolicyError):
        ops.revoke(
            db.session.get(User, people.office.id),
            db.session.get(PersonalPhoneApproval, approval_id),
            "why",
        )


def test_approving_a_cancelled_trips_request_is_refused(app, people):
    approval_id = people.ask()
    with app.app_context():
        trip_ops.cancel_trip(FACTORY, db.session.get(Trip, people.trip_id), "Snow")
        db.session.commit()
    assert people.approval(approval_id).current_state == ApprovalState.EXPIRED
    with pytest.raises(Conflict, match="trip cancelled"):
        people.approve(approval_id)
    assert people.approval(approval_id).state == ApprovalState.PENDING


def end_window(app, approval_id, minutes_ago=1):
    with app.app_context():
        table = PersonalPhoneApproval.__table__
        db.session.execute(
            update(table)
            .where(table.c.id == approval_id)
            .values(ends_at=utcnow() - timedelta(minutes=minutes_ago))
        )
        db.session.commit()


def test_approving_after_the_window_is_refused(app, people):
    approval_id = people.ask()
    end_window(app, approval_id)
    with pytest.raises(Conflict, match="window ended"):
        people.approve(approval_id)
    assert people.actions() == ["approval.requested"]


def test_an_approval_ends_by_itself_and_the_sweep_writes_it_down_once(app, people, runner):
    approval_id = people.ask()
    people.approve(approval_id)
    assert people.approval(approval_id).in_force
    end_window(app, approval_id)
    approval = people.approval(approval_id)
    assert approval.state == ApprovalState.APPROVED  # as stored
    assert approval.current_state == ApprovalState.EXPIRED  # as read
    assert not approval.in_force

    result = runner.invoke(args=["approvals", "expire"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"request {approval_id}: expired (window ended)",
        "1 expired",
    ]
    result = runner.invoke(args=["approvals", "expire"])
    assert result.output.splitlines() == ["0 expired"]
    approval = people.approval(approval_id)
    assert approval.state == ApprovalState.EXPIRED
    assert approval.expiry_reason == "window ended"
    expired = people.audit("approval.expired")
    assert len(expired) == 1
    assert expired[0].actor == "system"
    assert expired[0].data["was"] == "approved"
    with pytest.raises(Conflict):
        people.revoke(approval_id)


def test_a_cancelled_trip_ends_its_approvals(app, people):
    approval_id = people.ask()
    people.approve(approval_id)
    with app.app_context():
        trip_ops.cancel_trip(FACTORY, db.session.get(Trip, people.trip_id), "Snow")
        db.session.commit()
    assert not people.approval(approval_id).in_force
    with app.app_context():
        [expired] = ops.expire_due()
        db.session.commit()
        assert expired.expiry_reason == "trip cancelled"


def test_a_number_removed_from_the_user_is_no_longer_in_force(app, people):
    from tripcomms.approvals.queries import in_force
    from tripcomms.auth import operations as auth_ops

    approval_id = people.ask()
    people.approve(approval_id)
    with app.app_context():
        assert [a.id for a in in_force(people.trip_id)] == [approval_id]
        leader = db.session.get(User, people.leader.id)
        auth_ops.update_user(
            db.session.get(User, people.head.id),
            leader,
            email=leader.email,
            name=leader.name,
            roles=leader.roles,
            personal_numbers=[],
        )
        db.session.commit()
        assert in_force(people.trip_id) == []
        # The history stays.
        assert db.session.get(PersonalPhoneApproval, approval_id).number == LEADER_OWN


def test_notifications_need_notify_from(app, people):
    app.config["NOTIFY_FROM"] = ""
    people.ask()
    assert notifications(app) == []
    with app.app_context():
        assert db.session.scalar(select(Message).where(Message.direction == Direction.OUT)) is None

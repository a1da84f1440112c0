"""Urgent decisions by SMS: "APPROVE 17" or "DENY 17 <reason>" to NOTIFY_FROM from a number
registered to a Headteacher decides; the same words from anywhere else change nothing."""

from datetime import timedelta

from sqlalchemy import func, select

from tests.approvals.staff import DEPUTY_OWN, HEAD_OWN, HELPER_OWN, LEADER_OWN, NOTIFY
from tests.relay.scenario import TRIP_NUMBER, e164
from tripcomms.approvals.models import ApprovalState
from tripcomms.audit.models import AuditEvent
from tripcomms.extensions import db
from tripcomms.relay.models import Direction, Kind, Message
from tripcomms.relay.outbox import OutboxSender

STRANGER = e164(600)


def replies_to(scenario, number: str) -> list[str]:
    return [m.body for m in scenario.outbound(kind=Kind.NOTIFY, to_number=number)]


def test_approve_by_sms(scenario, people, app):
    approval_id = people.ask()
    sid = scenario.text(HEAD_OWN, f"approve {approval_id} until 4pm only", to=NOTIFY)
    approval = people.approval(approval_id)
    assert approval.state == ApprovalState.APPROVED
    assert approval.decided_by_id == people.head.id
    assert approval.decided_via == "sms"
    assert approval.decision_note == "until 4pm only"
    [inbound] = [m for m in scenario.inbound() if m.twilio_sid == sid]
    assert inbound.kind == Kind.TO_NOTIFY
    assert inbound.staff_id == people.head.id
    assert inbound.trip_id == people.trip_id
    assert not inbound.needs_review
    [confirmation] = [b for b in replies_to(scenario, HEAD_OWN) if b.startswith("Approved")]
    assert confirmation.startswith(
        f"Approved request {approval_id}: Liam Leader's own phone for Science Museum, "
    )
    assert "approved your own phone" in replies_to(scenario, LEADER_OWN)[-1]
    [event] = people.audit("approval.approved")
    assert event.actor_id == people.head.id
    assert event.data["via"] == "sms"
    assert event.data["sms_id"] == inbound.id
    # The approval is in force at once: the leader's own phone now relays.
    scenario.text(LEADER_OWN, "#1 Hello from the museum")
    assert scenario.to(e164(1)) == ["Hello from the museum"]


def test_deny_by_sms_with_a_reason(scenario, people):
    approval_id = people.ask()
    scenario.text(DEPUTY_OWN, f"DENY #{approval_id}: take Trip phone 4 from the office", to=NOTIFY)
    approval = people.approval(approval_id)
    assert approval.state == ApprovalState.DENIED
    assert approval.decided_by_id == people.deputy.id
    assert approval.decision_note == "take Trip phone 4 from the office"
    assert replies_to(scenario, DEPUTY_OWN)[-1] == (
        f"Denied request {approval_id}: Liam Leader's own phone for Science Museum. "
        "They have been told."
    )
    assert "take Trip phone 4 from the office" in replies_to(scenario, LEADER_OWN)[-1]


def test_deny_without_a_reason_changes_nothing(scenario, people):
    approval_id = people.ask()
    scenario.text(HEAD_OWN, f"DENY {approval_id}", to=NOTIFY)
    assert people.approval(approval_id).state == ApprovalState.PENDING
    assert replies_to(scenario, HEAD_OWN)[-1] == "Not done: a reason is required."
    [refused] = people.audit("approval.sms_refused")
    assert refused.actor_id == people.head.id
    assert refused.data["why"] == "InvalidInput"


def test_deciding_twice_by_sms_is_refused(scenario, people):
    approval_id = people.ask()
    scenario.text(HEAD_OWN, f"APPROVE {approval_id}", to=NOTIFY)
    scenario.text(DEPUTY_OWN, f"DENY {approval_id} no", to=NOTIFY)
    approval = people.approval(approval_id)
    assert (approval.state, approval.decided_by_id) == (ApprovalState.APPROVED, people.head.id)
    assert replies_to(scenario, DEPUTY_OWN)[-1] == (
        "Not done: this request is already approved; it cannot be decided again."
    )


def test_a_head_cannot_approve_their_own_request_by_sms(scenario, people, factory):
    trip = factory.trip(people.head, title="Zoo")
    approval_id = people.ask(people.head, HEAD_OWN, trip_id=trip)
    scenario.text(HEAD_OWN, f"APPROVE {approval_id}", to=NOTIFY)
    assert people.approval(approval_id).state == ApprovalState.PENDING
    assert "another Headteacher" in replies_to(scenario, HEAD_OWN)[-1]


def test_forged_decisions_from_other_numbers_change_nothing(scenario, people, app):
    approval_id = people.ask()
    # A stranger, the leader asking for themselves, and another member of staff.
    for sender in (STRANGER, LEADER_OWN, HELPER_OWN):
        scenario.text(sender, f"APPROVE {approval_id}", to=NOTIFY)
    assert people.approval(approval_id).state == ApprovalState.PENDING
    for sender in (STRANGER, LEADER_OWN, HELPER_OWN):
        assert [
            m for m in scenario.outbound() if m.to_number == sender and m.kind == Kind.NOTIFY
        ] == []
    refused = people.audit("approval.sms_refused")
    assert len(refused) == 3
    assert {e.actor for e in refused} == {"twilio"}
    assert {e.data["why"] for e in refused} == {"not a Headteacher's registered number"}
    assert [e.data["staff_id"] for e in refused] == [None, people.leader.id, people.helper.id]
    flagged = [m for m in scenario.inbound() if m.to_number == NOTIFY]
    assert all(m.needs_review and m.flagged == "decision_not_from_head" for m in flagged)
    assert people.actions().count("approval.approved") == 0


def test_a_bad_signature_is_refused_and_nothing_is_stored(scenario, people, app):
    approval_id = people.ask()
    params = {
        "MessageSid": "SM" + "f" * 32,
        "AccountSid": app.config["TWILIO_ACCOUNT_SID"],
        "From": HEAD_OWN,
        "To": NOTIFY,
        "Body": f"APPROVE {approval_id}",
        "NumMedia": "0",
    }
    response = scenario.post("/twilio/sms", params, signature="forged")
    assert response.status_code == 403
    assert people.approval(approval_id).state == ApprovalState.PENDING
    assert [m for m in scenario.inbound() if m.to_number == NOTIFY] == []
    with app.app_context():
        actions = db.session.scalars(select(AuditEvent.action)).all()
    assert "webhook.bad_signature" in actions


def test_twilio_posting_again_decides_once(scenario, people, app):
    approval_id = people.ask()
    sid = scenario.text(HEAD_OWN, f"APPROVE {approval_id}", to=NOTIFY)
    scenario.text(HEAD_OWN, f"APPROVE {approval_id}", to=NOTIFY, sid=sid)
    with app.app_context():
        stored = db.session.scalar(
            select(func.count()).select_from(Message).where(Message.twilio_sid == sid)
        )
    assert stored == 1
    assert people.actions().count("approval.approved") == 1
    assert len([b for b in replies_to(scenario, HEAD_OWN) if b.startswith("Approved")]) == 1


def test_other_texts_to_the_notify_number(scenario, people):
    approval_id = people.ask()
    scenario.text(HEAD_OWN, "What is this?", to=NOTIFY)
    scenario.text(HEAD_OWN, "Sorry?", to=NOTIFY)  # no second help text within the hour
    assert [b for b in replies_to(scenario, HEAD_OWN) if "APPROVE 17" in b] == [
        "To decide a personal-phone request, reply APPROVE 17 or DENY 17 and the reason."
    ]
    scenario.text(STRANGER, "Hello?", to=NOTIFY)
    stranger = [m for m in scenario.inbound() if m.from_number == STRANGER][-1]
    assert stranger.kind == Kind.TO_NOTIFY
    assert stranger.needs_review
    assert [m for m in scenario.outbound() if m.to_number == STRANGER] == []
    scenario.text(HEAD_OWN, "APPROVE 999", to=NOTIFY)
    assert replies_to(scenario, HEAD_OWN)[-1] == "Not done: there is no request 999."
    assert people.approval(approval_id).state == ApprovalState.PENDING


def test_trip_texts_are_untouched_by_the_notify_hook(scenario, people):
    approval_id = people.ask()
    scenario.text(HEAD_OWN, f"APPROVE {approval_id}", to=TRIP_NUMBER)
    assert people.approval(approval_id).state == ApprovalState.PENDING
    assert scenario.inbound()[-1].kind == Kind.FROM_STAFF_UNAPPROVED


# --- End to end through the simulator --------------------------------------------------------


def received(sim, number: str) -> list[tuple[str, str]]:
    return [(t.from_, t.body) for t in sim.texts_for(number) if t.direction == "received"]


def test_sms_decisions_through_the_simulator(scenario, people, app, sim, live_sim):
    sim.add_number(TRIP_NUMBER)
    sim.add_number(NOTIFY)
    sender = OutboxSender(app)  # the real gateway, pointed at the simulator

    # A request: both Headteachers' handsets get the question from the notification number.
    first = people.ask()
    assert sender.run_once() == 2
    sim.wait_idle()
    [(from_, body)] = received(sim, HEAD_OWN)
    assert from_ == NOTIFY
    assert body.endswith(f"Reply APPROVE {first} or DENY {first} <reason>.")

    # A forged APPROVE from another handset changes nothing and gets no answer.
    result = sim.send_from_handset(STRANGER, NOTIFY, f"APPROVE {first}")
    assert result.status == 200
    assert people.approval(first).state == ApprovalState.PENDING
    # And one with a bad signature is refused at the door.
    result = sim.send_from_handset(HEAD_OWN, NOTIFY, f"APPROVE {first}", signature="bad")
    assert result.status == 403
    assert people.approval(first).state == ApprovalState.PENDING

    # The Headteacher approves from her own handset; she and the leader are told.
    result = sim.send_from_handset(HEAD_OWN, NOTIFY, f"APPROVE {first}")
    assert result.status == 200
    approval = people.approval(first)
    assert (approval.state, approval.decided_via) == (ApprovalState.APPROVED, "sms")
    assert sender.run_once() == 2
    sim.wait_idle()
    assert received(sim, HEAD_OWN)[-1][1].startswith(f"Approved request {first}")
    assert "approved your own phone" in received(sim, LEADER_OWN)[-1][1]

    # Revoked, then asked again and denied by text with a reason.
    people.revoke(first)
    second = people.ask()
    sender.run_once()
    sim.send_from_handset(DEPUTY_OWN, NOTIFY, f"DENY {second} Trip phone 4 is free")
    sender.run_once()
    sim.wait_idle()
    approval = people.approval(second)
    assert (approval.state, approval.decision_note) == (
        ApprovalState.DENIED,
        "Trip phone 4 is free",
    )
    assert received(sim, DEPUTY_OWN)[-1][1].startswith(f"Denied request {second}")
    assert "Trip phone 4 is free" in received(sim, LEADER_OWN)[-1][1]
    assert received(sim, STRANGER) == []
    with app.app_context():
        directions = db.session.scalars(
            select(Message.direction).where(Message.from_number == STRANGER)
        ).all()
    assert directions == [Direction.IN]
    assert people.actions("approval.sms_refused") == ["approval.sms_refused"]


def test_the_notify_number_is_never_a_trip_number(scenario, people, app, factory):
    from tests.helpers import FACTORY
    from tripcomms.relay import numbers as number_ops
    from tripcomms.trips.models import Trip
    from tripcomms.types import utcnow

    trip_id = factory.trip(title="Zoo", starts_at=utcnow() + timedelta(days=30))
    with app.app_context():
        number_ops.add_number(FACTORY, NOTIFY)  # as `numbers sync` would
        trip = db.session.get(Trip, trip_id)
        assert [n.number for n in number_ops.free_numbers(trip)] == [TRIP_NUMBER]
        db.session.rollback()

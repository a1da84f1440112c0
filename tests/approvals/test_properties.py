"""Properties of the relay with personal phones approved, revoked and approved again, over
generated sequences of texts: no parent ever sees a personal number, and a personal phone's
texts reach parents only while its approval is in force."""

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.approvals.staff import HEAD_OWN, HELPER_OWN, LEADER_OWN, NOTIFY
from tests.relay.scenario import SCHOOL_PHONE, TRIP_NUMBER, e164
from tests.relay.test_properties import WAYS, nsn, trip_parents
from tripcomms.approvals import operations as ops
from tripcomms.approvals.models import PersonalPhoneApproval
from tripcomms.audit.operations import verify_chain
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.relay.models import TO_CONTACT_KINDS, Direction, Kind, Message, Status
from tripcomms.trips.models import Trip

PERSONAL = {LEADER_OWN: "leader", HELPER_OWN: "helper"}
STAFF_NUMBERS = [LEADER_OWN, HELPER_OWN, HEAD_OWN, SCHOOL_PHONE]
UNKNOWN = e164(600)


def bodies():
    text = st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=30,
    )
    leak = st.builds(
        lambda way, number, before: f"{before} {WAYS[way](number)}",
        st.integers(0, len(WAYS) - 1),
        st.sampled_from(STAFF_NUMBERS),
        text,
    )
    payload = st.one_of(text, leak)
    return st.one_of(
        st.builds(lambda c, t: f"#{c} {t}", st.sampled_from([1, 2, 3, 9]), payload),
        st.builds(lambda t: f"ALL {t}", payload),
        st.sampled_from(["LIST", "HELP", "STOP", "START"]),
        st.builds(lambda n, t: f"APPROVE {n} {t}", st.integers(1, 6), text),
        payload,
    )


STEPS = st.one_of(
    st.tuples(st.just("approve"), st.sampled_from(sorted(PERSONAL))),
    st.tuples(st.just("revoke"), st.sampled_from(sorted(PERSONAL))),
    st.tuples(
        st.just("text"),
        st.sampled_from([e164(1), e164(2), e164(3), *STAFF_NUMBERS, UNKNOWN]),
        st.sampled_from([TRIP_NUMBER, TRIP_NUMBER, NOTIFY]),
        bodies(),
    ),
)


def open_approval(number: str) -> PersonalPhoneApproval | None:
    return db.session.scalar(
        select(PersonalPhoneApproval).where(
            PersonalPhoneApproval.number == number,
            PersonalPhoneApproval.state.in_(("pending", "approved")),
        )
    )


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(steps=st.lists(STEPS, min_size=1, max_size=8))
def test_personal_phones_never_reach_a_parent(scenario, people, app, steps):
    owners = {LEADER_OWN: people.leader, HELPER_OWN: people.helper}
    for step in steps:
        if step[0] == "approve":
            with app.app_context():
                if open_approval(step[1]) is None:
                    owner = db.session.get(User, owners[step[1]].id)
                    approval = ops.request_approval(
                        owner,
                        db.session.get(Trip, people.trip_id),
                        owner,
                        step[1],
                        "No school phone",
                    )
                    ops.approve(db.session.get(User, people.head.id), approval)
                    db.session.commit()
        elif step[0] == "revoke":
            with app.app_context():
                approval = open_approval(step[1])
                if approval is not None and approval.state == "approved":
                    ops.revoke(db.session.get(User, people.head.id), approval, "Phone back")
                    db.session.commit()
        else:
            _, sender, to, body = step
            with app.app_context():
                approval = open_approval(sender)
                in_force = approval is not None and approval.in_force
            scenario.text(sender, body, to=to)
            inbound = scenario.inbound()[-1]
            if sender in PERSONAL and to == TRIP_NUMBER:
                # In force, it is a command like any trip phone's; otherwise refused.
                expected = Kind.COMMAND if in_force else Kind.FROM_STAFF_UNAPPROVED
                assert inbound.kind == expected, (sender, body, in_force)
                if not in_force:
                    # Refused: only the sender hears back. (For repeats the safeguarding lead
                    # and the Headteacher get a concern notice, which hangs on the concern.)
                    caused = scenario.outbound(caused_by_id=inbound.id)
                    assert all(m.to_number == sender for m in caused), caused
    scenario.send_all()

    parents = {n for ns in trip_parents(app).values() for n in ns}
    with app.app_context():
        messages = db.session.scalars(select(Message)).all()
        for m in messages:
            if m.direction != Direction.OUT:
                continue
            # A personal number never sends anything: the school's numbers do.
            assert m.from_number in (TRIP_NUMBER, NOTIFY), m
            if m.to_number not in parents or m.status == Status.BLOCKED:
                continue
            assert m.kind in (*TO_CONTACT_KINDS, Kind.AUTO_REPLY), m
            assert m.from_number == TRIP_NUMBER, m
            digits = re.sub(r"\D", "", m.body)
            for number in STAFF_NUMBERS:
                assert nsn(number) not in digits, (m.body, number)
        # Nothing from NOTIFY_FROM ever goes to a parent.
        assert not [m for m in messages if m.from_number == NOTIFY and m.to_number in parents]
        assert verify_chain().ok
    for to, from_, _body, _callback in scenario.gateway.sent:
        if to in parents:
            assert from_ == TRIP_NUMBER

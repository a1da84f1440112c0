"""Properties of the relay over generated rosters, endpoints and sequences of texts."""

import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from tests.helpers import FACTORY
from tests.relay.scenario import SCHOOL_PHONE, SCHOOL_PHONE_2, TRIP_NUMBER, e164
from tripcomms.extensions import db
from tripcomms.relay import numbers as number_ops
from tripcomms.relay.models import Direction, Kind, Message, Status
from tripcomms.trips import operations as trip_ops
from tripcomms.trips.models import Trip

OTHER_NUMBER = "+441234000002"
OTHER_PHONE = "+447500000003"
STAFF_PERSONAL = [e164(900), e164(901), e164(902)]
UNKNOWN = [e164(600), e164(601)]
PUPIL = e164(40)

WAYS = [
    lambda n: n,
    lambda n: "0" + n[3:],
    lambda n: "0" + n[3:7] + " " + n[7:],
    lambda n: "(0" + n[3:7] + ") " + n[7:10] + "-" + n[10:],
    lambda n: "+44 " + n[3:7] + " " + n[7:10] + " " + n[10:],
    lambda n: "0044" + n[3:],
    lambda n: ".".join(["0" + n[3:7], n[7:10], n[10:]]),
    lambda n: " ".join("0" + n[3:]),
]


def nsn(number: str) -> str:
    return number[3:]  # +44 numbers only here


def bodies(codes):
    text = st.text(
        alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=40,
    )
    leak = st.builds(
        lambda way, number, before: f"{before} {WAYS[way](number)}",
        st.integers(0, len(WAYS) - 1),
        st.sampled_from([*STAFF_PERSONAL, SCHOOL_PHONE, OTHER_PHONE]),
        text,
    )
    payload = st.one_of(text, leak)
    return st.one_of(
        st.builds(lambda c, t: f"#{c} {t}", st.sampled_from(codes), payload),
        st.builds(lambda t: f"ALL {t}", payload),
        st.sampled_from(["LIST", "HELP", "STOP", "START", "help", "stop"]),
        payload,
    )


def setup_second_trip(scenario, app, factory):
    """A second trip on another number; Mary (#1 on the first) is a parent on both."""
    other_leader = factory.user("leader", personal_numbers=(STAFF_PERSONAL[1],))
    trip2 = factory.trip(other_leader, title="Farm")
    with app.app_context():
        number_ops.add_number(FACTORY, OTHER_NUMBER)
        number_ops.allocate_number(FACTORY, db.session.get(Trip, trip2))
        trip_ops.import_roster(
            FACTORY,
            db.session.get(Trip, trip2),
            (
                "pupil_first_name,pupil_last_name,year_group,contact_name,relationship,mobile\n"
                f"Lily,Jones,Year 3,Mary Jones,mother,{e164(1)}\n"
                f"Raj,Khan,Year 3,Priya Khan,mother,{e164(20)}\n"
            ).encode(),
        )
        db.session.commit()
    original = scenario.endpoints
    scenario.endpoints = {}
    scenario.give_phone(OTHER_PHONE, other_leader, "Farm phone")
    trip2_endpoints = scenario.endpoints
    scenario.endpoints = original

    from tripcomms.relay import endpoints as endpoint_registry

    def provider(trip, at):
        return list(trip2_endpoints.values()) if trip.id == trip2 else []

    endpoint_registry.PROVIDERS.append(provider)
    return trip2


def trip_parents(app) -> dict[int, set[str]]:
    """Numbers of the parents of each trip's pupils."""
    from tripcomms.trips.models import Contact, ContactLink, TripPupil

    with app.app_context():
        rows = db.session.execute(
            select(TripPupil.trip_id, Contact.mobile)
            .join(ContactLink, ContactLink.pupil_id == TripPupil.pupil_id)
            .join(Contact, Contact.id == ContactLink.contact_id)
        )
        found: dict[int, set[str]] = {}
        for trip_id, number in rows:
            found.setdefault(trip_id, set()).add(number)
        return found


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_relay_properties(scenario, app, factory, monkeypatch, data):
    if not getattr(scenario, "second_trip", None):
        factory.user("office", personal_numbers=(STAFF_PERSONAL[2],))
        scenario.second_trip = setup_second_trip(scenario, app, factory)
        scenario.give_phone(SCHOOL_PHONE_2, scenario.helper, "Trip phone 2")
        scenario.posted = []
    parents = sorted({n for ns in trip_parents(app).values() for n in ns})
    senders = st.sampled_from(
        [*parents, SCHOOL_PHONE, SCHOOL_PHONE_2, OTHER_PHONE, *STAFF_PERSONAL, *UNKNOWN, PUPIL]
    )
    steps = data.draw(
        st.lists(
            st.tuples(
                senders,
                st.sampled_from([TRIP_NUMBER, OTHER_NUMBER, "+441234000099"]),
                bodies([1, 2, 3, 4, 99]),
                st.booleans(),  # Twilio posts it again
            ),
            min_size=1,
            max_size=6,
        )
    )
    for sender, to, body, repeat in steps:
        sid = scenario.text(sender, body, to=to)
        scenario.posted.append(sid)
        if repeat:
            scenario.text(sender, body, to=to, sid=sid)
    scenario.send_all()

    staff_numbers = {*STAFF_PERSONAL, SCHOOL_PHONE, SCHOOL_PHONE_2, OTHER_PHONE}
    numbers_of = {scenario.trip_id: TRIP_NUMBER, scenario.second_trip: OTHER_NUMBER}
    family = trip_parents(app)
    all_parents = {n for ns in family.values() for n in ns}
    with app.app_context():
        messages = db.session.scalars(select(Message)).all()
        ids = {m.id for m in messages}
        inbound_sids = [m.twilio_sid for m in messages if m.direction == Direction.IN]
        # Every inbound text stored exactly once.
        assert sorted(inbound_sids) == sorted(set(scenario.posted))
        for m in messages:
            # Every message an inbound text caused exists and points at it.
            if m.caused_by_id is not None:
                assert m.caused_by_id in ids
            if m.direction != Direction.OUT or m.to_number not in all_parents:
                continue
            if m.status == Status.BLOCKED:
                continue
            by_number = {m.id: m for m in messages}
            if m.kind == Kind.AUTO_REPLY:
                # An answer to the parent's own text to that number, and to nobody else.
                cause = by_number[m.caused_by_id]
                assert (m.to_number, m.from_number) == (cause.from_number, cause.to_number)
                continue
            # Sent from the trip's own number, for a trip the parent's child is on.
            assert m.trip_id is not None, m
            assert m.from_number == numbers_of[m.trip_id], m
            assert m.to_number in family[m.trip_id], m
            # No staff number in any form.
            digits = re.sub(r"\D", "", m.body)
            for number in staff_numbers:
                assert nsn(number) not in digits, (m.body, number)
    # What reached the gateway for parents came from the school's Twilio numbers only.
    school_twilio = {TRIP_NUMBER, OTHER_NUMBER, "+441234000099"}
    for to, from_, _body, _callback in scenario.gateway.sent:
        if to in all_parents:
            assert from_ in school_twilio

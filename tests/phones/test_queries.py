"""What other packages ask of the phone pool: the trip summary and the relay's numbers."""

from datetime import timedelta

import pytest
from flask import render_template_string

from tests.helpers import FACTORY, local
from tripcomms.errors import NotFound
from tripcomms.extensions import db
from tripcomms.phones import operations as ops
from tripcomms.phones.models import Loan, Phone
from tripcomms.phones.queries import (
    all_school_phone_numbers,
    describe_period,
    find_phone,
    school_phone_numbers_on_loan,
    trip_phone_summary,
)
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow


def test_trip_phone_summary(app, factory, pool):
    leader = factory.user("leader", name="Liam Leader")
    trip = factory.trip(leader, title="Year 6 Museum")
    out = pool.phone("Trip phone 1", number="+447400123401")
    back = pool.phone("Trip phone 2")
    booked = pool.phone("Trip phone 3")
    pool.issue(out, trip, leader.id)
    loan = pool.issue(back, trip, leader.id)
    pool.book(trip, booked)
    with app.app_context():
        ops.return_loan(FACTORY, db.session.get(Loan, loan))
        db.session.commit()
        summary = trip_phone_summary(db.session.get(Trip, trip))
        assert [b.phone.label for b in summary["booked"]] == ["Trip phone 3"]
        assert [(x.phone.label, x.holder.name) for x in summary["on_loan"]] == [
            ("Trip phone 1", "Liam Leader")
        ]
        assert [x.phone.label for x in summary["returned"]] == ["Trip phone 2"]
        assert summary["counts"] == {"booked": 1, "on_loan": 1, "returned": 1}

        # The trip page (another package's) includes the summary with only ``trip`` set.
        with app.test_request_context():
            html = render_template_string(
                '{% include "phones/_trip_summary.html" %}', trip=db.session.get(Trip, trip)
            )
        assert "Trip phone 1 (07400 123401) with Liam Leader" in html
        assert "Booked: Trip phone 3." in html
        assert "Returned: 1." in html
        assert f'href="/trips/{trip}/phones"' in html


def test_numbers_on_loan_at_a_moment(app, factory, pool):
    leader = factory.user("leader")
    trip = factory.trip(leader)
    other = factory.trip(factory.user("leader"))
    first = pool.phone("Trip phone 1", number="+447400123401")
    second = pool.phone("Trip phone 2", number="+447400123402")
    elsewhere = pool.phone("Trip phone 3", number="+447400123403")
    before = utcnow()
    first_loan = pool.issue(first, trip, leader.id)
    pool.issue(second, trip, leader.id)
    with app.app_context():
        other_trip = db.session.get(Trip, other)
        ops.issue_loan(FACTORY, db.session.get(Phone, elsewhere), other_trip, other_trip.leader)
        db.session.commit()
    during = utcnow()
    with app.app_context():
        ops.return_loan(FACTORY, db.session.get(Loan, first_loan))
        db.session.commit()
        after = utcnow()
        assert school_phone_numbers_on_loan(trip, before) == []
        assert school_phone_numbers_on_loan(trip, during) == ["+447400123401", "+447400123402"]
        assert school_phone_numbers_on_loan(trip, after) == ["+447400123402"]
        assert school_phone_numbers_on_loan(trip, after + timedelta(days=30)) == ["+447400123402"]
        assert all_school_phone_numbers() == {"+447400123401", "+447400123402", "+447400123403"}
        ops.retire_phone(FACTORY, db.session.get(Phone, first))
        assert "+447400123401" in all_school_phone_numbers()


def test_find_phone_by_label_or_number(app, pool):
    pool.phone("Trip phone 1", number="+447400123401")
    with app.app_context():
        assert find_phone("trip PHONE 1").label == "Trip phone 1"
        assert find_phone("07400 123401").label == "Trip phone 1"
        assert find_phone("+44 7400 123401").label == "Trip phone 1"
        for wanted in ("Trip phone 2", "07400 123499", ""):
            with pytest.raises(NotFound):
                find_phone(wanted)


def test_describe_period_in_london_time():
    assert describe_period(local("2026-03-02 09:00"), local("2026-03-02 18:00")) == (
        "Mon 2 Mar 09:00\u201318:00"
    )
    assert describe_period(local("2026-07-06 09:00"), local("2026-07-07 06:00")) == (
        "Mon 6 Jul 09:00\u2013Tue 7 Jul 06:00"
    )

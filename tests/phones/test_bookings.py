"""Booking phones ahead for a trip: clashes, the past, cancelling, availability."""

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from tests.helpers import FACTORY, local
from tests.phones.conftest import count, future_local, last_event
from tripcomms.audit.models import AuditEvent
from tripcomms.errors import Conflict, InvalidInput
from tripcomms.extensions import db
from tripcomms.localtime import LONDON
from tripcomms.phones import operations as ops
from tripcomms.phones.models import Booking, BookingStatus, Phone, PhoneStatus
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow

EN_DASH = "\u2013"


@pytest.fixture
def museum(factory):
    """Year 6 Museum, on a Monday some weeks ahead, 09:00 to 18:00 London time."""
    leader = factory.user("leader", name="Liam Leader")
    start, day = future_local(14, "09:00", weekday=0)
    end = start.replace("09:00", "18:00")
    trip_id = factory.trip(
        leader, title="Year 6 Museum", starts_at=local(start), ends_at=local(end)
    )
    return {"id": trip_id, "leader": leader, "day": day, "start": start, "end": end}


@pytest.fixture
def zoo(factory, museum):
    """Year 5 Zoo on the same Monday, 10:00 to 15:00."""
    leader = factory.user("leader", name="Tara Teacher")
    trip_id = factory.trip(
        leader,
        title="Year 5 Zoo",
        starts_at=local(museum["start"].replace("09:00", "10:00")),
        ends_at=local(museum["start"].replace("09:00", "15:00")),
    )
    return {"id": trip_id, "leader": leader}


def test_office_books_two_phones_for_the_trips_dates(app, office_client, pool, museum, office):
    for n in (1, 2, 3):
        pool.phone(f"Trip phone {n}")
    response = office_client.post_form(f"/trips/{museum['id']}/phones/book", {"count": "2"})
    assert response.status_code == 303
    with app.app_context():
        trip = db.session.get(Trip, museum["id"])
        bookings = db.session.scalars(select(Booking).order_by(Booking.id)).all()
        assert [b.phone.label for b in bookings] == ["Trip phone 1", "Trip phone 2"]
        for booking in bookings:
            assert booking.starts_at == trip.starts_at
            assert booking.ends_at == trip.ends_at + timedelta(hours=12)
            assert booking.status == BookingStatus.BOOKED
            assert booking.created_by_id == office.id
    event = last_event(app)
    assert event.action == "booking.created"
    assert event.data["trip_id"] == museum["id"]
    assert event.data["chosen_by"] == "pool"
    page = office_client.get(f"/trips/{museum['id']}/phones").get_data(as_text=True)
    assert "Booked Trip phone 1, Trip phone 2 for Year 6 Museum." in page


def test_a_clash_names_the_other_trip(app, office_client, pool, museum, zoo):
    phone = pool.phone("Trip phone 3")
    pool.book(
        museum["id"],
        phone,
        starts_at=local(museum["start"]),
        ends_at=local(museum["end"]),
    )
    events = count(app, AuditEvent)
    response = office_client.post_form(f"/trips/{zoo['id']}/phones/book", {"phones": [str(phone)]})
    assert response.status_code == 200
    expected = f"Trip phone 3 is booked for Year 6 Museum ({museum['day']} 09:00{EN_DASH}18:00)"
    assert expected in response.get_data(as_text=True)
    assert count(app, Booking) == 1
    assert count(app, AuditEvent) == events


def test_periods_are_half_open(app, pool, museum, zoo):
    phone = pool.phone()
    pool.book(museum["id"], phone, starts_at=local(museum["start"]), ends_at=local(museum["end"]))
    # The zoo may have it from the moment the museum's booking ends, not a minute before.
    with pytest.raises(Conflict):
        pool.book(
            zoo["id"],
            phone,
            starts_at=local(museum["end"]) - timedelta(minutes=1),
            ends_at=local(museum["end"]) + timedelta(hours=2),
        )
    pool.book(
        zoo["id"],
        phone,
        starts_at=local(museum["end"]),
        ends_at=local(museum["end"]) + timedelta(hours=2),
    )
    assert count(app, Booking) == 2


def test_a_booking_clashes_with_an_open_loan(app, pool, factory, museum):
    leader = factory.user("leader", name="Leah Now")
    running = factory.trip(leader, title="Forest School")
    phone = pool.phone("Trip phone 1")
    due = local(museum["start"]) + timedelta(hours=1)
    pool.issue(phone, running, leader.id, due_at=due)
    with pytest.raises(Conflict) as err:
        pool.book(museum["id"], phone)
    assert str(err.value).startswith("Trip phone 1 is on loan to Leah Now for Forest School until")
    # Due back before the museum's booking starts: no clash.
    pool.book(museum["id"], pool.phone("Trip phone 2"))
    with app.app_context():
        loan_phone = db.session.get(Phone, phone)
        ops.return_phone(FACTORY, loan_phone)
        db.session.commit()
    pool.book(museum["id"], phone)


def test_an_overdue_loan_holds_its_phone(app, pool, factory, museum):
    leader = factory.user("leader", name="Leah Late")
    running = factory.trip(leader, title="Forest School")
    phone = pool.phone("Trip phone 1")
    loan = pool.issue(phone, running, leader.id)
    with app.app_context():
        from tripcomms.phones.models import Loan

        db.session.get(Loan, loan).due_at = utcnow() - timedelta(hours=3)
        db.session.commit()
        trip = db.session.get(Trip, museum["id"])
        with pytest.raises(Conflict, match="on loan to Leah Late"):
            ops.book_phones(
                FACTORY,
                trip,
                phones=[db.session.get(Phone, phone)],
                starts_at=utcnow() - timedelta(hours=1),
                ends_at=utcnow() + timedelta(hours=2),
            )


def test_a_booking_in_the_past_is_refused(app, office_client, pool, factory):
    phone = pool.phone()
    leader = factory.user("leader")
    over = factory.trip(
        leader,
        title="Last week",
        starts_at=utcnow() - timedelta(days=7),
        ends_at=utcnow() - timedelta(days=7) + timedelta(hours=8),
    )
    response = office_client.post_form(f"/trips/{over}/phones/book", {"count": "1"})
    assert "that period is in the past" in response.get_data(as_text=True)
    upcoming = factory.trip(leader, title="Next week", starts_at=utcnow() + timedelta(days=7))
    page = office_client.post_form(
        f"/trips/{upcoming}/phones/book",
        {"phones": [str(phone)], "starts_at": "2020-01-06T09:00", "ends_at": "2020-01-06T17:00"},
    ).get_data(as_text=True)
    assert "that period is in the past" in page
    assert count(app, Booking) == 0


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({}, "choose phones or give a number of phones to book"),
        ({"count": "0"}, "Number must be between 1 and 50"),
        ({"count": "many"}, "Not a valid integer value"),
        ({"count": "5"}, "only 2 phones are free for that period; 5 asked for"),
        ({"count": "1", "phones": ["PHONE"]}, "either choose phones or give a number"),
        ({"count": "1", "starts_at": "tomorrow"}, "the start must look like 2026-03-14 09:30"),
        ({"count": "1", "ends_at": "x" * 21}, "Field cannot be longer than 20 characters"),
        (
            {"count": "1", "starts_at": "START", "ends_at": "START"},
            "the booking must end after it starts",
        ),
        ({"count": "1", "ends_at": "LONG"}, "a booking is at most 31 days long"),
        ({"phones": ["999"]}, "one of the chosen phones no longer exists"),
        # Ids beyond a 32-bit integer reached the database, which failed (500).
        ({"phones": ["99999999999999999999"]}, "one or more data inputs could not be coerced"),
        ({"phones": ["PHONE", "2147483648"]}, "one or more data inputs could not be coerced"),
    ],
)
def test_bad_booking_input(app, office_client, pool, museum, form, message):
    first = pool.phone()
    pool.phone()
    replace = {
        "PHONE": str(first),
        "START": museum["start"].replace(" ", "T"),
        "LONG": (local(museum["start"]) + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M"),
    }
    data = {
        key: [replace.get(v, v) for v in value]
        if isinstance(value, list)
        else replace.get(value, value)
        for key, value in form.items()
    }
    events = count(app, AuditEvent)
    response = office_client.post_form(f"/trips/{museum['id']}/phones/book", data)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert count(app, Booking) == 0
    assert count(app, AuditEvent) == events


def test_booking_the_same_phone_twice_for_a_trip(app, pool, museum):
    phone = pool.phone("Trip phone 1")
    pool.book(museum["id"], phone)
    with pytest.raises(Conflict, match="Trip phone 1 is already booked for this trip"):
        pool.book(museum["id"], phone)


def test_lost_and_retired_phones_cannot_be_booked_and_are_not_chosen(app, pool, museum):
    lost, retired = pool.phone("Lost one"), pool.phone("Old one")
    with app.app_context():
        ops.set_phone_status(FACTORY, db.session.get(Phone, lost), PhoneStatus.LOST)
        ops.retire_phone(FACTORY, db.session.get(Phone, retired))
        db.session.commit()
    for phone_id, word in ((lost, "lost"), (retired, "retired")):
        with pytest.raises(Conflict, match=f"is {word} and cannot be booked"):
            pool.book(museum["id"], phone_id)
    with pytest.raises(Conflict, match="only 0 phones are free"):
        pool.book(museum["id"], count=1)


def test_a_cancelled_trip_cannot_book(app, pool, museum):
    phone = pool.phone()
    with app.app_context():
        from tripcomms.trips.operations import cancel_trip

        cancel_trip(FACTORY, db.session.get(Trip, museum["id"]), "Coach broke down")
        db.session.commit()
    with pytest.raises(Conflict, match="Year 6 Museum is cancelled"):
        pool.book(museum["id"], phone)


def test_cancel_a_booking(app, office_client, pool, museum, zoo):
    phone = pool.phone("Trip phone 1")
    [booking] = pool.book(museum["id"], phone)
    # Another trip's page cannot cancel it.
    url = f"/trips/{zoo['id']}/phones/bookings/{booking}/cancel"
    assert office_client.post_form(url).status_code == 404
    url = f"/trips/{museum['id']}/phones/bookings/{booking}/cancel"
    response = office_client.post_form(url, follow_redirects=True)
    assert "Booking of Trip phone 1 cancelled." in response.get_data(as_text=True)
    assert last_event(app).action == "booking.cancelled"
    with app.app_context():
        assert db.session.get(Booking, booking).status == BookingStatus.CANCELLED
    response = office_client.post_form(url, follow_redirects=True)
    assert "That booking of Trip phone 1 is already cancelled." in response.get_data(as_text=True)
    # The phone is free for the zoo now.
    pool.book(zoo["id"], phone)


def test_phone_list_shows_availability_for_a_period(app, office_client, pool, museum):
    booked = pool.phone("Trip phone 1")
    pool.phone("Trip phone 2")
    pool.book(museum["id"], booked, starts_at=local(museum["start"]), ends_at=local(museum["end"]))
    start = museum["start"].replace(" ", "T")
    end = museum["end"].replace(" ", "T")
    page = office_client.get(f"/phones?starts_at={start}&ends_at={end}").get_data(as_text=True)
    row1 = page[page.index(">Trip phone 1<") : page.index(">Trip phone 2<")]
    row2 = page[page.index(">Trip phone 2<") :]
    assert "Booked for Year 6 Museum" in row1
    assert "Free" in row2.split("</tr>")[0]
    page = office_client.get(f"/phones?starts_at={end}&ends_at={start}").get_data(as_text=True)
    assert "the end must be after the start" in page
    page = office_client.get(f"/phones?starts_at={start}").get_data(as_text=True)
    assert "give both a start and an end" in page


def test_calendar_strip_shows_bookings_and_loans(app, office_client, pool, factory, museum):
    leader = factory.user("leader", name="Leah Now")
    running = factory.trip(leader, title="Forest School")
    out = pool.phone("Trip phone 1")
    pool.issue(out, running, leader.id)
    later = pool.phone("Trip phone 2")
    pool.book(museum["id"], later)
    page = office_client.get("/phones/calendar").get_data(as_text=True)
    assert "on loan to Leah Now for Forest School" in page
    day_from = (local(museum["start"]) - timedelta(days=3)).date().isoformat()
    page = office_client.get(f"/phones/calendar?from={day_from}").get_data(as_text=True)
    assert f"{museum['day']}: booked for Year 6 Museum" in page
    assert 'class="booked' in page
    assert office_client.get("/phones/calendar?from=nonsense").status_code == 200


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1999-12-31", "2100-01-01"])
def test_calendar_from_a_day_beyond_its_range_shows_today(app, office_client, day):
    """Four weeks either side of 9999-12-31 (or 0001-01-01) is past what a date holds: the
    page failed with a 500."""
    page = office_client.get(f"/phones/calendar?from={day}")
    assert page.status_code == 200
    today = datetime.now(LONDON).date()
    assert f"from={(today + timedelta(days=28)).isoformat()}" in page.get_data(as_text=True)


def test_operation_refuses_nonsense_periods(app, pool, museum):
    phone = pool.phone()
    with app.app_context():
        trip = db.session.get(Trip, museum["id"])
        start = local(museum["start"])
        with pytest.raises(InvalidInput, match="end after it starts"):
            ops.book_phones(
                FACTORY,
                trip,
                phones=[db.session.get(Phone, phone)],
                starts_at=start,
                ends_at=start - timedelta(hours=1),
            )
        with pytest.raises(InvalidInput, match="at most 50 phones"):
            ops.book_phones(FACTORY, trip, count=51)


def test_a_cancelled_trips_bookings_hold_nothing(app, pool, museum, zoo):
    phone = pool.phone("Trip phone 1")
    pool.book(museum["id"], phone)
    with app.app_context():
        from tripcomms.trips.operations import cancel_trip

        cancel_trip(FACTORY, db.session.get(Trip, museum["id"]), "Museum closed")
        db.session.commit()
    # The zoo, the same day, may have the phone the cancelled museum trip had booked.
    pool.book(zoo["id"], phone)
    assert count(app, Booking) == 2

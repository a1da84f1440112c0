"""Issuing phones to trip staff and taking them back."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from tests.helpers import FACTORY, local
from tests.phones.conftest import count, future_local, last_event
from tripcomms.audit.models import AuditEvent
from tripcomms.auth.models import User
from tripcomms.errors import Conflict, InvalidInput
from tripcomms.extensions import db
from tripcomms.phones import operations as ops
from tripcomms.phones.models import (
    Booking,
    BookingStatus,
    Loan,
    Phone,
    PhoneEvent,
    PhoneStatus,
    ReturnCondition,
)
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow


@pytest.fixture
def museum(factory):
    """Year 6 Museum, in progress now, led by Liam Leader with Tara Teacher."""
    leader = factory.user("leader", name="Liam Leader", email="liam@school.test")
    teacher = factory.user("leader", name="Tara Teacher", email="tara@school.test")
    trip_id = factory.trip(leader, title="Year 6 Museum", staff=(teacher,))
    return {"id": trip_id, "leader": leader, "teacher": teacher}


def issue_form(phone_id, holder_id, **extra):
    return {"phone_id": str(phone_id), "holder_id": str(holder_id), **extra}


def test_office_issues_a_phone_to_the_leader(app, office_client, office, pool, museum):
    phone = pool.phone("Trip phone 3")
    response = office_client.post_form(
        f"/trips/{museum['id']}/phones/issue",
        issue_form(phone, museum["leader"].id, due_at="", condition_out="Cracked case"),
    )
    assert response.status_code == 303
    with app.app_context():
        loan = db.session.scalar(select(Loan))
        trip = db.session.get(Trip, museum["id"])
        assert loan.holder_id == museum["leader"].id
        assert loan.due_at == trip.ends_at + timedelta(hours=12)
        assert loan.condition_out == "Cracked case"
        assert loan.issued_by_id == office.id
        assert loan.phone.status == PhoneStatus.ON_LOAN
    event = last_event(app)
    assert event.action == "loan.issued"
    assert event.data["holder_id"] == museum["leader"].id
    page = office_client.get(response.location).get_data(as_text=True)
    assert "Trip phone 3 issued to Liam Leader, due back" in page


def test_issue_to_accompanying_staff_with_a_due_time(app, pool, museum, runner):
    phone = pool.phone("Trip phone 1")
    due = (utcnow() + timedelta(days=2)).replace(second=0, microsecond=0)
    pool.issue(phone, museum["id"], museum["teacher"].id, due_at=due)
    with app.app_context():
        assert db.session.scalar(select(Loan)).due_at == due


def test_only_the_trips_staff_can_hold_its_phones(app, office_client, pool, museum, factory):
    outsider = factory.user("leader", name="Oscar Outsider")
    phone = pool.phone()
    page = office_client.post_form(
        f"/trips/{museum['id']}/phones/issue", issue_form(phone, outsider.id)
    ).get_data(as_text=True)
    assert "Oscar Outsider is not the leader or accompanying staff of Year 6 Museum" in page
    page = office_client.post_form(
        f"/trips/{museum['id']}/phones/issue", issue_form(phone, 9999)
    ).get_data(as_text=True)
    assert "choose who takes the phone" in page
    assert count(app, Loan) == 0


def test_issuing_a_phone_already_on_loan(app, office_client, pool, museum, factory):
    phone = pool.phone("Trip phone 3")
    pool.issue(phone, museum["id"], museum["leader"].id)
    zoo_leader = factory.user("leader")
    other = factory.trip(zoo_leader, title="Year 5 Zoo")
    events = count(app, AuditEvent)
    response = office_client.post_form(
        f"/trips/{other}/phones/issue", issue_form(phone, zoo_leader.id)
    )
    assert "Trip phone 3 is already on loan to Liam Leader for Year 6 Museum" in (
        response.get_data(as_text=True)
    )
    assert count(app, Loan) == 1
    assert count(app, AuditEvent) == events


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (PhoneStatus.LOST, "Trip phone 3 is lost and cannot be issued"),
        (PhoneStatus.REPAIR, "Trip phone 3 is in repair and cannot be issued"),
        (PhoneStatus.RETIRED, "Trip phone 3 is retired and cannot be issued"),
    ],
)
def test_issuing_a_phone_that_is_not_available(app, office_client, pool, museum, status, message):
    phone = pool.phone("Trip phone 3")
    with app.app_context():
        row = db.session.get(Phone, phone)
        if status == PhoneStatus.RETIRED:
            ops.retire_phone(FACTORY, row)
        else:
            ops.set_phone_status(FACTORY, row, status)
        db.session.commit()
    page = office_client.post_form(
        f"/trips/{museum['id']}/phones/issue", issue_form(phone, museum["leader"].id)
    ).get_data(as_text=True)
    assert message in page
    assert count(app, Loan) == 0


def test_a_phone_booked_for_another_trip(app, office_client, pool, museum, factory):
    start, day = future_local(2, "08:00")
    zoo = factory.trip(
        factory.user("leader"),
        title="Year 5 Zoo",
        starts_at=local(start),
        ends_at=local(start) + timedelta(hours=8),
    )
    phone = pool.phone("Trip phone 3")
    pool.book(zoo, phone)
    page = office_client.post_form(
        f"/trips/{museum['id']}/phones/issue",
        issue_form(
            phone, museum["leader"].id, due_at=start.replace(" ", "T").replace("08:", "09:")
        ),
    ).get_data(as_text=True)
    assert f"Trip phone 3 is booked for Year 5 Zoo ({day} 08:00" in page
    assert count(app, Loan) == 0
    # Due back before the zoo's booking starts, it may go.
    due = start.replace(" ", "T").replace("T08:", "T07:")
    response = office_client.post_form(
        f"/trips/{museum['id']}/phones/issue",
        issue_form(phone, museum["leader"].id, due_at=due),
    )
    assert response.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(Booking)).status == BookingStatus.BOOKED


def test_issuing_against_this_trips_booking_fulfils_it(app, pool, museum):
    phone = pool.phone("Trip phone 1")
    [booking] = pool.book(museum["id"], phone)
    loan = pool.issue(phone, museum["id"], museum["leader"].id)
    with app.app_context():
        row = db.session.get(Booking, booking)
        assert row.status == BookingStatus.FULFILLED
        assert row.loan_id == loan
        assert last_event(app).data["fulfilled_booking_ids"] == [booking]
        with pytest.raises(Conflict, match="return it instead"):
            ops.cancel_booking(FACTORY, row)


@pytest.mark.parametrize(
    ("due_at", "message"),
    [
        ("2020-01-01T09:00", "the due-back time must be in the future"),
        ("soon", "the due-back time must look like 2026-03-14 09:30"),
        ("FAR", "a loan is at most 31 days long"),
    ],
)
def test_bad_due_times(app, office_client, pool, museum, due_at, message):
    phone = pool.phone()
    if due_at == "FAR":
        due_at = (utcnow() + timedelta(days=40)).strftime("%Y-%m-%dT%H:%M")
    page = office_client.post_form(
        f"/trips/{museum['id']}/phones/issue",
        issue_form(phone, museum["leader"].id, due_at=due_at),
    ).get_data(as_text=True)
    assert message in page
    assert count(app, Loan) == 0


@pytest.mark.parametrize("field", ["phone_id", "holder_id"])
@pytest.mark.parametrize("number", ["2147483648", "99999999999999999999", "-1"])
def test_an_id_too_big_for_the_database_is_a_form_error(
    app, office_client, pool, museum, field, number
):
    """A phone or holder id beyond a 32-bit integer reached the database, which failed (500).
    No id is negative either."""
    phone = pool.phone()
    data = issue_form(phone, museum["leader"].id)
    data[field] = number
    response = office_client.post_form(f"/trips/{museum['id']}/phones/issue", data)
    assert response.status_code == 200
    assert "Invalid Choice: could not coerce" in response.get_data(as_text=True)
    assert count(app, Loan) == 0


def test_over_long_condition_notes(app, office_client, pool, museum):
    phone = pool.phone()
    page = office_client.post_form(
        f"/trips/{museum['id']}/phones/issue",
        issue_form(phone, museum["leader"].id, condition_out="x" * 501),
    ).get_data(as_text=True)
    assert "Field cannot be longer than 500 characters" in page
    with app.app_context(), pytest.raises(InvalidInput, match="at most 500 characters"):
        ops.issue_loan(
            FACTORY,
            db.session.get(Phone, phone),
            db.session.get(Trip, museum["id"]),
            db.session.get(User, museum["leader"].id),
            condition_notes="x" * 501,
        )


def test_a_trip_that_is_over_gets_no_phone(app, pool, factory):
    leader = factory.user("leader")
    over = factory.trip(leader, title="Last week", starts_at=utcnow() - timedelta(days=7))
    phone = pool.phone()
    with pytest.raises(Conflict, match="Last week is over"):
        pool.issue(phone, over, leader.id)


@pytest.mark.parametrize(
    ("condition", "status", "label"),
    [
        ("ok", PhoneStatus.AVAILABLE, "available"),
        ("damaged", PhoneStatus.REPAIR, "in repair"),
        ("lost", PhoneStatus.LOST, "lost"),
    ],
)
def test_return_sets_the_phone_status(
    app, office_client, office, pool, museum, condition, status, label
):
    phone = pool.phone("Trip phone 3")
    loan = pool.issue(phone, museum["id"], museum["leader"].id)
    url = f"/trips/{museum['id']}/phones/loans/{loan}/return"
    assert "Take back Trip phone 3" in office_client.get(url).get_data(as_text=True)
    response = office_client.post_form(
        url,
        {"condition": condition, "charger_returned": "y", "texts_deleted": "y", "notes": "Fine"},
        follow_redirects=True,
    )
    page = response.get_data(as_text=True)
    assert f"Trip phone 3 is back from Liam Leader; it is now {label}." in page
    assert "Delete the texts" not in page
    with app.app_context():
        row = db.session.get(Loan, loan)
        assert row.return_condition == ReturnCondition(condition)
        assert (row.charger_returned, row.texts_deleted) == (True, True)
        assert row.returned_by_id == office.id
        assert row.phone.status == status
        kinds = [e.kind for e in db.session.scalars(select(PhoneEvent).order_by(PhoneEvent.id))]
        assert kinds == ["added", "issued", "returned"]
    event = last_event(app)
    assert event.action == "loan.returned"
    assert event.data == {
        "phone_id": phone,
        "trip_id": museum["id"],
        "condition": condition,
        "charger_returned": True,
        "texts_deleted": True,
        "late": False,
    }


def test_return_checklist_reminds_what_is_missing(app, office_client, pool, museum):
    phone = pool.phone("Trip phone 3")
    loan = pool.issue(phone, museum["id"], museum["leader"].id)
    page = office_client.post_form(
        f"/trips/{museum['id']}/phones/loans/{loan}/return",
        {"condition": "ok"},
        follow_redirects=True,
    ).get_data(as_text=True)
    assert "Delete the texts on Trip phone 3 before it goes out again" in page
    assert "The charger for Trip phone 3 is still to come back." in page
    with app.app_context():
        row = db.session.get(Loan, loan)
        assert (row.charger_returned, row.texts_deleted) == (False, False)


def test_returning_twice_is_refused(app, office_client, pool, museum):
    phone = pool.phone("Trip phone 3")
    loan = pool.issue(phone, museum["id"], museum["leader"].id)
    url = f"/trips/{museum['id']}/phones/loans/{loan}/return"
    office_client.post_form(url, {"condition": "ok"})
    events = count(app, AuditEvent)
    page = office_client.post_form(url, {"condition": "damaged"}, follow_redirects=True).get_data(
        as_text=True
    )
    assert "Trip phone 3 was already returned on" in page
    assert "already returned" in office_client.get(url).get_data(as_text=True)
    with app.app_context():
        assert db.session.get(Phone, phone).status == PhoneStatus.AVAILABLE
        with pytest.raises(Conflict, match="Trip phone 3 is not on loan; it was returned on"):
            ops.return_phone(FACTORY, db.session.get(Phone, phone))
    assert count(app, AuditEvent) == events


def test_bad_return_input(app, office_client, pool, museum):
    phone = pool.phone()
    loan = pool.issue(phone, museum["id"], museum["leader"].id)
    url = f"/trips/{museum['id']}/phones/loans/{loan}/return"
    page = office_client.post_form(url, {"condition": "broken"}).get_data(as_text=True)
    assert "Not a valid choice" in page
    page = office_client.post_form(url, {"condition": "ok", "notes": "n" * 501}).get_data(
        as_text=True
    )
    assert "Field cannot be longer than 500 characters" in page
    with app.app_context():
        assert db.session.get(Loan, loan).returned_at is None
        with pytest.raises(InvalidInput, match="condition must be one of ok, damaged, lost"):
            ops.return_loan(FACTORY, db.session.get(Loan, loan), condition="broken")
    # A loan is only reachable through its own trip.
    assert (
        office_client.get(f"/trips/{museum['id'] + 1}/phones/loans/{loan}/return").status_code
        == 404
    )


def test_the_database_allows_one_open_loan_per_phone(app, pool, museum):
    phone = pool.phone()
    pool.issue(phone, museum["id"], museum["leader"].id)
    with app.app_context():
        loan = db.session.scalar(select(Loan))
        db.session.add(
            Loan(
                phone_id=phone,
                trip_id=museum["id"],
                holder_id=museum["leader"].id,
                due_at=loan.due_at,
            )
        )
        with pytest.raises(IntegrityError):
            db.session.flush()
        db.session.rollback()
        # Once returned, the next loan of the same phone is allowed.
        ops.return_loan(FACTORY, db.session.get(Loan, loan.id))
        db.session.add(
            Loan(
                phone_id=phone,
                trip_id=museum["id"],
                holder_id=museum["leader"].id,
                due_at=loan.due_at,
            )
        )
        db.session.flush()
        db.session.rollback()


def test_a_race_lost_at_the_index_is_a_clear_conflict(app, pool, museum, monkeypatch):
    """If another issue slips in between the checks and the insert, the unique index refuses
    the second loan and the operation reports who has the phone."""
    phone = pool.phone("Trip phone 3")
    pool.issue(phone, museum["id"], museum["leader"].id)
    with app.app_context():
        # What a stale read would see: no open loan, the phone available.
        db.session.execute(update(Phone).values(status=PhoneStatus.AVAILABLE))
        db.session.commit()
        monkeypatch.setattr(ops, "open_loan", lambda phone_id: None)
        with pytest.raises(Conflict) as err:
            ops.issue_loan(
                FACTORY,
                db.session.get(Phone, phone),
                db.session.get(Trip, museum["id"]),
                db.session.get(User, museum["teacher"].id),
            )
        assert str(err.value) == "Trip phone 3 is already on loan to Liam Leader for Year 6 Museum"
        db.session.rollback()
        assert len(db.session.scalars(select(Loan)).all()) == 1


def test_loans_page_filters_sorts_and_pages(app, office_client, pool, museum):
    phones = [pool.phone(f"Phone {n:02d}", number=f"+4474001236{n:02d}") for n in range(1, 28)]
    loans = [pool.issue(p, museum["id"], museum["leader"].id) for p in phones]
    with app.app_context():
        ops.return_loan(FACTORY, db.session.get(Loan, loans[0]))
        db.session.get(Loan, loans[1]).due_at = utcnow() - timedelta(hours=2)
        db.session.commit()
    page = office_client.get("/loans").get_data(as_text=True)
    assert "Page 1 of 2 (26 in all)" in page
    overdue = office_client.get("/loans?show=overdue").get_data(as_text=True)
    assert "Phone 02" in overdue and "Phone 03" not in overdue and "2 h late" in overdue
    returned = office_client.get("/loans?show=returned").get_data(as_text=True)
    assert "Phone 01" in returned and "Phone 02" not in returned
    by_phone = office_client.get("/loans?show=all&sort=phone&page=2").get_data(as_text=True)
    assert "Phone 27" in by_phone and "Phone 01" not in by_phone
    assert office_client.get("/loans?show=bogus&sort=bogus").status_code == 200

"""Adding, editing, setting the status of and retiring school phones."""

import pytest
from sqlalchemy import select

from tests.helpers import FACTORY
from tests.phones.conftest import count, last_event
from tripcomms.audit.models import AuditEvent
from tripcomms.errors import Conflict, InvalidInput
from tripcomms.extensions import db
from tripcomms.phones import operations as ops
from tripcomms.phones.models import Phone, PhoneEvent, PhoneStatus
from tripcomms.phones.queries import find_phone


def phone_form(**overrides):
    data = {"label": "Trip phone 3", "number": "07400 123403", "serial": "356938035643809"}
    data.update(overrides)
    return data


def test_office_adds_a_phone(app, office_client, office):
    response = office_client.post_form("/phones/new", phone_form())
    assert response.status_code == 303
    with app.app_context():
        phone = db.session.scalar(select(Phone))
        assert (phone.label, phone.number, phone.status) == (
            "Trip phone 3",
            "+447400123403",
            PhoneStatus.AVAILABLE,
        )
        event = db.session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()))
        assert event.action == "phone.added"
        assert event.actor_id == office.id
        assert event.data == {"label": "Trip phone 3", "serial": True}
        assert "123403" not in str(event.data)  # never the number
        history = db.session.scalars(select(PhoneEvent)).all()
        assert [(h.kind, h.from_status, h.to_status) for h in history] == [
            ("added", None, PhoneStatus.AVAILABLE)
        ]
    page = office_client.get(response.location).get_data(as_text=True)
    assert "Trip phone 3" in page
    assert "07400 123403" in page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"number": "01234 567890"}, "is not a mobile number"),
        ({"number": "07700 900123"}, "is not a valid phone number"),
        ({"number": "ring me"}, "is not a phone number"),
        ({"number": ""}, "This field is required."),
        ({"label": ""}, "This field is required."),
        ({"label": "x" * 61}, "Field cannot be longer than 60 characters"),
        ({"serial": "9" * 61}, "Field cannot be longer than 60 characters"),
        ({"notes": "n" * 1001}, "Field cannot be longer than 1000 characters"),
        ({"number": "0" * 41}, "Field cannot be longer than 40 characters"),
    ],
)
def test_bad_phone_input_is_refused_and_changes_nothing(app, office_client, overrides, message):
    events = count(app, AuditEvent)
    response = office_client.post_form("/phones/new", phone_form(**overrides))
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert count(app, Phone) == 0
    assert count(app, AuditEvent) == events


def test_over_long_fields_are_refused_by_the_operation_too(app):
    with app.app_context():
        for kwargs, field in [
            ({"label": "x" * 61}, "label"),
            ({"serial": "9" * 61}, "serial"),
            ({"notes": "n" * 1001}, "notes"),
            ({"number": "0" * 41}, "number"),
        ]:
            data = {"label": "Trip phone 1", "number": "07400123401", **kwargs}
            with pytest.raises(InvalidInput) as err:
                ops.add_phone(FACTORY, **data)
            assert err.value.field == field
        assert db.session.scalar(select(Phone)) is None


@pytest.mark.parametrize("label", ["Öko phone", "İ1"])
def test_a_label_with_capitals_beyond_ascii_is_not_taken_twice(app, office_client, pool, label):
    """SQLite's lower() changes ASCII letters only: the label was looked for as Python lowered
    it, not found, and the insert failed on the unique label with a 500. The phone is found
    by that label too."""
    phone = pool.phone(label)
    page = office_client.post_form("/phones/new", phone_form(label=label)).get_data(as_text=True)
    assert "there is already a phone labelled" in page
    assert count(app, Phone) == 1
    with app.app_context():
        assert find_phone(label).id == phone


def test_label_and_number_are_unique(app, office_client, pool):
    pool.phone("Trip phone 3", number="+447400123403")
    page = office_client.post_form("/phones/new", phone_form(label="TRIP PHONE 3")).get_data(
        as_text=True
    )
    assert "there is already a phone labelled" in page
    page = office_client.post_form(
        "/phones/new", phone_form(label="Trip phone 4", number="+44 7400 123403")
    ).get_data(as_text=True)
    assert "+44 7400 123403 is already the number of Trip phone 3" in page
    assert count(app, Phone) == 1


def test_a_staff_personal_number_cannot_be_a_school_phone(app, office_client, factory):
    factory.user("leader", personal_numbers=("07911 123456",))
    page = office_client.post_form("/phones/new", phone_form(number="07911123456")).get_data(
        as_text=True
    )
    assert "registered as a member of staff&#39;s personal number" in page
    assert "(policy 50)" in page
    assert count(app, Phone) == 0


def test_office_edits_a_phone(app, office_client, pool):
    phone_id = pool.phone("Trip phone 1")
    response = office_client.post_form(
        f"/phones/{phone_id}/edit",
        {"label": "Trip phone 9", "number": "07400 123499", "serial": "", "notes": "Blue case"},
    )
    assert response.status_code == 303
    with app.app_context():
        phone = db.session.get(Phone, phone_id)
        assert (phone.label, phone.number, phone.notes) == (
            "Trip phone 9",
            "+447400123499",
            "Blue case",
        )
    event = last_event(app)
    assert event.action == "phone.updated"
    assert event.data == {"label": "Trip phone 9", "number": True, "notes": True}
    page = office_client.get(f"/phones/{phone_id}/edit").get_data(as_text=True)
    assert 'value="Trip phone 9"' in page


def test_number_of_a_phone_on_loan_cannot_change(app, office_client, pool, factory):
    leader = factory.user("leader")
    trip = factory.trip(leader)
    phone_id = pool.phone("Trip phone 1")
    pool.issue(phone_id, trip, leader.id)
    page = office_client.post_form(
        f"/phones/{phone_id}/edit", {"label": "Trip phone 1", "number": "07400 123499"}
    ).get_data(as_text=True)
    assert "Trip phone 1 is on loan; change its number after it comes back" in page


def test_status_by_hand_shows_in_the_history(app, office_client, pool):
    phone_id = pool.phone("Trip phone 1")
    office_client.post_form(
        f"/phones/{phone_id}/status", {"status": "repair", "note": "Cracked screen"}
    )
    response = office_client.post_form(
        f"/phones/{phone_id}/status", {"status": "available", "note": "Screen replaced"}
    )
    assert response.status_code == 303
    assert last_event(app).action == "phone.status_changed"
    assert last_event(app).data == {"before": "repair", "after": "available"}
    page = office_client.get(f"/phones/{phone_id}").get_data(as_text=True)
    history = page[page.index("Status history") :]
    # Newest first.
    assert (
        history.index("Screen replaced") < history.index("Cracked screen") < history.index("added")
    )
    assert "In repair → Available" in history


def test_status_changes_that_are_refused(app, office_client, pool, factory):
    leader = factory.user("leader")
    phone_id = pool.phone("Trip phone 1")
    page = office_client.post_form(f"/phones/{phone_id}/status", {"status": "available"}).get_data(
        as_text=True
    )
    assert "Trip phone 1 is already available" in page
    page = office_client.post_form(f"/phones/{phone_id}/status", {"status": "on loan"}).get_data(
        as_text=True
    )
    assert "Not a valid choice" in page
    pool.issue(phone_id, factory.trip(leader), leader.id)
    page = office_client.post_form(f"/phones/{phone_id}/status", {"status": "repair"}).get_data(
        as_text=True
    )
    assert "Trip phone 1 is on loan; record its return instead" in page
    with app.app_context():
        assert db.session.get(Phone, phone_id).status == PhoneStatus.ON_LOAN
        with pytest.raises(InvalidInput):
            ops.set_phone_status(FACTORY, db.session.get(Phone, phone_id), "on loan")


def test_retire(app, office_client, pool, factory):
    leader = factory.user("leader", name="Liam Leader")
    trip = factory.trip(leader, title="Year 6 Museum")
    out = pool.phone("Trip phone 1")
    pool.issue(out, trip, leader.id)
    page = office_client.post_form(
        f"/phones/{out}/retire", {"note": ""}, follow_redirects=True
    ).get_data(as_text=True)
    assert "Not retired: Trip phone 1 is on loan to Liam Leader for Year 6 Museum" in page

    booked = pool.phone("Trip phone 2")
    pool.book(trip, booked)
    page = office_client.post_form(f"/phones/{booked}/retire", follow_redirects=True).get_data(
        as_text=True
    )
    assert "Not retired: Trip phone 2 is booked for Year 6 Museum" in page

    spare = pool.phone("Trip phone 3")
    response = office_client.post_form(f"/phones/{spare}/retire", {"note": "Battery swollen"})
    assert response.status_code == 303
    assert last_event(app).action == "phone.retired"
    with app.app_context():
        assert db.session.get(Phone, spare).status == PhoneStatus.RETIRED
        with pytest.raises(Conflict, match="already retired"):
            ops.retire_phone(FACTORY, db.session.get(Phone, spare))
    office_client.get("/")  # the flash is shown, and gone
    listing = office_client.get("/phones").get_data(as_text=True)
    assert "Trip phone 3" not in listing
    assert "Trip phone 3" in office_client.get("/phones?show=all").get_data(as_text=True)


def test_phone_list_pages_and_sorts(app, office_client, pool):
    for n in range(1, 31):
        pool.phone(f"Phone {n:02d}", number=f"+4474001235{n:02d}")
    with app.app_context():
        phone = db.session.scalar(select(Phone).where(Phone.label == "Phone 30"))
        ops.set_phone_status(FACTORY, phone, "repair")
        db.session.commit()
        phone_id = phone.id
    first = office_client.get("/phones").get_data(as_text=True)
    assert "Phone 01" in first and "Phone 25" in first and "Phone 26" not in first
    assert "Page 1 of 2 (30 in all)" in first
    second = office_client.get("/phones?page=2").get_data(as_text=True)
    assert "Phone 26" in second and "Phone 25" not in second
    by_status = office_client.get("/phones?sort=status").get_data(as_text=True)
    # Available sorts before repair: the phone in repair is on the last page.
    assert "Phone 30" not in by_status
    assert "Phone 30" in office_client.get("/phones?sort=status&page=2").get_data(as_text=True)
    newest = office_client.get("/phones?sort=added").get_data(as_text=True)
    assert newest.index("Phone 30") < newest.index("Phone 06")
    # Nonsense in the query string falls back rather than failing.
    assert office_client.get("/phones?sort=evil&page=99").status_code == 200
    assert office_client.get(f"/phones/{phone_id}?phone_id=1&loans_page=x").status_code == 200

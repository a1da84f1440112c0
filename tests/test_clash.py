"""Two people save the same thing at the same moment: the second is refused, not a 500.

Both pass the operation's check ("that name is already used"), then the database's unique
constraint refuses the second one's write. ``meanwhile`` makes that happen every time: the
other person's request is saved and committed right after this one's check. The second is
rolled back (nothing of it is saved), told so on its form, which keeps what was typed, and
the clash is logged without the values.
"""

import io
import logging

import pytest
from markupsafe import escape
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from tests.helpers import FACTORY, meanwhile
from tests.trips.rosters import mobile, roster_csv
from tripcomms.audit.models import AuditEvent
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.phones import operations as phone_ops
from tripcomms.phones.models import Phone, PhoneEvent
from tripcomms.relay import numbers as number_ops
from tripcomms.relay import operations as relay_ops
from tripcomms.relay import views as relay_views
from tripcomms.relay.gateway import IncomingNumber
from tripcomms.relay.models import MessageTemplate, ProxyNumber
from tripcomms.trips import operations as trip_ops
from tripcomms.trips.models import Contact, Pupil, Trip, TripContact

CLASH = "someone else saved a change here at the same moment. Check the page and try again."


def rows(app, model, *columns):
    with app.app_context():
        query = select(*columns).order_by(model.id)
        return [tuple(row) for row in db.session.execute(query)]


def actions(app, prefix: str) -> list[str]:
    with app.app_context():
        return list(
            db.session.scalars(
                select(AuditEvent.action)
                .where(AuditEvent.action.like(f"{prefix}%"))
                .order_by(AuditEvent.seq)
            )
        )


def clash_logged(caplog, *secrets: str) -> str:
    """The one warning about the clash; it names the constraint, never what was typed."""
    [record] = [r for r in caplog.records if r.name == "tripcomms.forms"]
    assert record.levelno == logging.WARNING
    message = record.getMessage()
    assert "not saved" in message
    for secret in secrets:
        assert secret not in message
    return message


def upload(client, url: str, field: str, data: bytes):
    """POST a file form as a browser would, encoded in memory (see tests/phones)."""
    values = {"csrf_token": client.csrf_token(), field: FileStorage(io.BytesIO(data), "f.csv")}
    boundary, body = encode_multipart(values)
    return client.post(url, data=body, content_type=f"multipart/form-data; boundary={boundary}")


@pytest.fixture
def office(client, factory):
    user = factory.user("office", name="Olive Office")
    client.login(user.email)
    return user


# --- Message templates --------------------------------------------------------------------------


def other_template(name: str, body: str = "The coach is running late"):
    def save():
        someone = db.session.scalar(select(User).order_by(User.id))
        relay_ops.create_template(someone, name=name, body=body)

    return save


def test_two_templates_with_one_name_at_once(app, client, office, monkeypatch, caplog):
    ran = meanwhile(monkeypatch, app, relay_ops, "_template_fields", other_template("Late"))
    body = "Coach delayed by {minutes} minutes"
    response = client.post_form("/message-templates", {"name": "Late", "body": body})
    assert ran
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert escape(f"Not saved: {CLASH}") in page
    assert 'value="Late"' in page and body in page  # the form keeps what was typed
    assert rows(app, MessageTemplate, MessageTemplate.name, MessageTemplate.body) == [
        ("Late", "The coach is running late")
    ]
    assert actions(app, "template.") == ["template.created"]  # the other's only
    assert "message_templates" in clash_logged(caplog, "Coach delayed", "Late")


def test_renaming_a_template_to_a_name_saved_at_the_same_moment(app, client, office, monkeypatch):
    with app.app_context():
        template = relay_ops.create_template(
            db.session.get(User, office.id), name="Arrived", body="We have arrived"
        )
        db.session.commit()
        template_id = template.id
    meanwhile(monkeypatch, app, relay_ops, "_template_fields", other_template("Late"))
    response = client.post_form(
        f"/message-templates/{template_id}", {"name": "Late", "body": "We are late"}
    )
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert escape(f"Not saved: {CLASH}") in page
    assert 'value="Late"' in page and "We are late" in page
    assert rows(app, MessageTemplate, MessageTemplate.name, MessageTemplate.body) == [
        ("Arrived", "We have arrived"),
        ("Late", "The coach is running late"),
    ]
    assert actions(app, "template.") == ["template.created", "template.created"]


# --- Phones -------------------------------------------------------------------------------------


def other_phone(label: str, number: str):
    def save():
        phone_ops.add_phone(FACTORY, label=label, number=number)

    return save


def test_two_phones_labelled_the_same_at_once(app, client, office, monkeypatch, caplog):
    ran = meanwhile(
        monkeypatch, app, phone_ops, "_check_label_free", other_phone("Trip phone 3", mobile(2))
    )
    response = client.post_form(
        "/phones/new", {"label": "Trip phone 3", "number": mobile(1), "serial": "356938035643801"}
    )
    assert ran
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert escape(f"Not saved: {CLASH}") in page
    assert 'value="Trip phone 3"' in page
    assert f'value="{mobile(1)}"' in page and 'value="356938035643801"' in page
    assert rows(app, Phone, Phone.label, Phone.number) == [("Trip phone 3", "+447400000002")]
    assert len(rows(app, PhoneEvent, PhoneEvent.id)) == 1  # the other phone's "added"
    assert actions(app, "phone.") == ["phone.added"]
    assert "phones" in clash_logged(caplog, "+447400000001", "Trip phone 3", "356938035643801")


def test_relabelling_a_phone_to_a_label_saved_at_the_same_moment(app, client, office, monkeypatch):
    with app.app_context():
        phone_id = phone_ops.add_phone(FACTORY, label="Trip phone 1", number=mobile(1)).id
        db.session.commit()
    meanwhile(
        monkeypatch, app, phone_ops, "_check_label_free", other_phone("Trip phone 3", mobile(2))
    )
    response = client.post_form(
        f"/phones/{phone_id}/edit", {"label": "Trip phone 3", "number": mobile(1)}
    )
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert escape(f"Not saved: {CLASH}") in page and 'value="Trip phone 3"' in page
    assert rows(app, Phone, Phone.label) == [("Trip phone 1",), ("Trip phone 3",)]
    assert actions(app, "phone.") == ["phone.added", "phone.added"]


def test_importing_a_phone_added_at_the_same_moment(app, client, office, monkeypatch):
    meanwhile(
        monkeypatch, app, phone_ops, "_check_label_free", other_phone("Trip phone 1", mobile(9))
    )
    data = f"label,number,serial\nTrip phone 1,{mobile(1)},\nTrip phone 2,{mobile(2)},\n"
    response = upload(client, "/phones/import", "file", data.encode())
    assert response.status_code == 200
    assert escape(f"Not imported: {CLASH}") in response.get_data(as_text=True)
    assert rows(app, Phone, Phone.label) == [("Trip phone 1",)]
    assert actions(app, "phone") == ["phone.added"]


# --- A trip's roster ----------------------------------------------------------------------------


def test_one_roster_uploaded_twice_at_the_same_moment(app, client, factory, office, monkeypatch):
    trip_id = factory.trip(title="Science Museum")
    data = roster_csv(
        [
            f"Sam,Jones,Year 6,Mary Jones,mother,{mobile(1)}",
            f"Ella,Smith,Year 5,Ann Smith,carer,{mobile(3)}",
        ]
    )

    def the_other_click():
        trip_ops.import_roster(FACTORY, db.session.get(Trip, trip_id), data)

    # After this request has looked up which parents are on record, before it adds them.
    meanwhile(monkeypatch, app, trip_ops, "_sync_links", the_other_click)
    response = upload(client, f"/trips/{trip_id}/roster", "roster", data)
    assert response.status_code == 422
    assert escape(f"Not imported: {CLASH}") in response.get_data(as_text=True)
    assert len(rows(app, Contact, Contact.id)) == len(rows(app, TripContact, TripContact.id)) == 2
    assert len(rows(app, Pupil, Pupil.id)) == 2
    assert actions(app, "roster.") == ["roster.imported"]


# --- The school's Twilio numbers ----------------------------------------------------------------


class OneNumber:
    """Twilio's answer to "which numbers are there": one, not yet pointed at tripcomms."""

    def __init__(self, number: str) -> None:
        self.number = number
        self.configured: list[str] = []

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        pass

    def list_numbers(self):
        return [IncomingNumber("PN1", self.number, None, None)]

    def configure_number(self, sid: str, sms_url: str, status_callback: str) -> None:
        self.configured.append(sid)


def test_a_number_added_while_the_numbers_are_synced(app, client, factory, monkeypatch):
    admin = factory.user("admin")
    client.login(admin.email)
    gateway = OneNumber("+441234000001")
    monkeypatch.setattr(relay_views, "gateway_from_config", lambda config: gateway)

    def the_other_admin():
        number_ops.add_number(FACTORY, "+441234000001")

    # After the sync found the number missing, before it wrote it.
    meanwhile(monkeypatch, app, gateway, "configure_number", the_other_admin)
    response = client.post_form("/admin/numbers/sync")
    assert response.status_code == 303 and response.location == "/admin/numbers"
    page = client.get(response.location).get_data(as_text=True)
    assert escape(f"Not saved: {CLASH}") in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ProxyNumber)) == 1
    assert actions(app, "number.") == ["number.added"]

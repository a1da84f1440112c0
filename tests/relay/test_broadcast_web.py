"""Texting every parent from the web: check, confirm once, watch the progress, send again."""

import re

import pytest
from sqlalchemy import func, select

from tests.relay.scenario import SCHOOL_PHONE, ErrorKind, GatewayError, e164
from tripcomms.audit.models import AuditEvent
from tripcomms.extensions import db
from tripcomms.relay.models import Broadcast, Kind, Message, Status

MARY, TOM, ANN = e164(1), e164(2), e164(3)
HIDDEN = re.compile(r'id="(body|request_key)" name="\1" type="hidden" value="([^"]*)"')


@pytest.fixture
def leader(scenario):
    scenario.client.login(scenario.leader.email)
    return scenario.leader


def url(scenario, tail=""):
    return f"/trips/{scenario.trip_id}{tail}"


def check(scenario, body):
    return scenario.client.post_form(url(scenario, "/broadcast"), {"body": body})


def confirm_fields(page: str) -> dict[str, str]:
    fields = dict(HIDDEN.findall(page))
    assert set(fields) == {"body", "request_key"}, fields
    return fields


def confirm(scenario, fields):
    return scenario.client.post_form(url(scenario, "/broadcast/send"), fields)


def no_contact_roster(scenario):
    scenario.import_roster(
        [
            f"Sam,Jones,Year 6,Mary Jones,mother,{MARY},no",
            f"Sam,Jones,Year 6,Tom Jones,father,{TOM},yes",
            f"Ella,Smith,Year 5,Ann Smith,carer,{ANN},no",
        ],
        header="pupil_first_name,pupil_last_name,year_group,contact_name,relationship,mobile,"
        "no_contact",
    )


def test_the_check_says_how_many_receive_it_and_who_does_not(scenario, leader):
    no_contact_roster(scenario)
    scenario.text(ANN, "STOP")
    response = check(scenario, "Back at 4pm")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Send this to 1 parent or carer?" in page
    assert "#3 Ann Smith (Ella S.): opted out of texts from this trip number (STOP)" in page
    assert "#2 Tom Jones (Sam J.): no contact" in page
    assert "Send to 1" in page
    assert scenario.outbound(kind=Kind.BROADCAST) == []  # nothing sent before confirming


def test_confirming_sends_once_and_shows_the_progress(scenario, leader, app):
    page = check(scenario, "Back at 4pm").get_data(as_text=True)
    fields = confirm_fields(page)
    first = confirm(scenario, fields)
    second = confirm(scenario, fields)  # a second click, or the form sent again
    assert first.status_code == second.status_code == 303
    assert first.location == second.location
    assert re.search(r"/broadcasts/\d+$", first.location)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Broadcast)) == 1
    assert sorted(m.to_number for m in scenario.outbound(kind=Kind.BROADCAST)) == [
        MARY,
        TOM,
        ANN,
    ]
    progress = scenario.client.get(first.location).get_data(as_text=True)
    assert "Sent to 3." in progress and "Back at 4pm" in progress
    assert 'max="3" value="0"' in progress


def test_an_empty_or_too_long_broadcast_is_refused(scenario, leader):
    response = check(scenario, "")
    assert response.status_code == 422
    assert "there is no message to send" in response.get_data(as_text=True)
    response = check(scenario, "y" * 2000)
    assert response.status_code == 422
    assert "the message is 2,000 characters; the limit is 1,600" in response.get_data(as_text=True)
    assert scenario.outbound() == []


def test_a_broadcast_with_another_number_is_blocked_at_the_check(scenario, leader, app):
    response = check(scenario, f"Ring {SCHOOL_PHONE} if lost")
    assert response.status_code == 422
    assert "a phone number that is not the school office or this trip&#39;s number" in (
        response.get_data(as_text=True)
    )
    (blocked,) = scenario.outbound()
    assert blocked.status == Status.BLOCKED and blocked.kind == Kind.BROADCAST
    with app.app_context():
        assert db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "message.blocked")
        )


def test_change_the_message_goes_back_with_the_text(scenario, leader):
    response = scenario.client.post_form(
        url(scenario, "/broadcast"), {"body": "Back at 4pm", "action": "edit"}
    )
    assert response.status_code == 200
    assert "Back at 4pm</textarea>" in response.get_data(as_text=True)


def progress_json(scenario, location):
    return scenario.client.get(location + ".json").get_json()


def test_progress_follows_delivery_and_a_failure_can_be_sent_again(scenario, leader, app):
    fields = confirm_fields(check(scenario, "Arrived safely").get_data(as_text=True))
    location = confirm(scenario, fields).location
    data = progress_json(scenario, location)
    assert data["total"] == 3 and data["done"] == 0 and data["finished"] is False
    assert data["counts"] == {"queued": 3, "sent": 0, "delivered": 0, "failed": 0}
    assert [r["code"] for r in data["recipients"]] == [1, 2, 3]
    assert {r["name"] for r in data["recipients"]} == {"Mary Jones", "Tom Jones", "Ann Smith"}

    scenario.send_all()
    sent = {m.to_number: m for m in scenario.outbound(kind=Kind.BROADCAST)}
    scenario.status(sent[MARY].twilio_sid, "delivered")
    scenario.status(sent[TOM].twilio_sid, "sent")
    scenario.status(sent[ANN].twilio_sid, "undelivered", 30003)
    data = progress_json(scenario, location)
    assert data["counts"] == {"queued": 0, "sent": 1, "delivered": 1, "failed": 1}
    ann = data["recipients"][0]  # those not delivered come first
    assert ann["code"] == 3
    assert ann["state"] == "failed" and ann["status"] == "Not delivered"
    assert ann["reason"] == "unreachable: the phone is off or out of signal"
    assert ann["retry_url"].endswith(f"/messages/{sent[ANN].id}/retry")
    page = scenario.client.get(location).get_data(as_text=True)
    assert "Send again" in page and "unreachable" in page

    response = scenario.client.post_form(ann["retry_url"])
    assert response.status_code == 303 and response.location == location
    assert "Sending again to #3 Ann Smith." in scenario.client.get(location).get_data(as_text=True)
    again = scenario.outbound(kind=Kind.BROADCAST, to_number=ANN)
    assert [m.status for m in again] == [Status.UNDELIVERED, Status.PENDING]
    assert again[1].retry_of_id == again[0].id and again[1].broadcast_id == again[0].broadcast_id
    assert again[0].caused_by_id is None and again[1].caused_by_id is None
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "message.retried"))
        assert event.data["retry_of"] == again[0].id and event.actor_id == scenario.leader.id

    # Sent again once only.
    response = scenario.client.post_form(ann["retry_url"])
    assert "this text has already been sent again" in scenario.client.get(
        response.location
    ).get_data(as_text=True)
    assert len(scenario.outbound(kind=Kind.BROADCAST, to_number=ANN)) == 2

    scenario.send_all()
    retried = scenario.outbound(kind=Kind.BROADCAST, to_number=ANN)[1]
    scenario.status(retried.twilio_sid, "delivered")
    scenario.status(sent[TOM].twilio_sid, "delivered")
    data = progress_json(scenario, location)
    assert data["counts"] == {"queued": 0, "sent": 0, "delivered": 3, "failed": 0}
    assert data["done"] == data["total"] == 3 and data["finished"] is True
    assert [(r["code"], r["attempts"]) for r in data["recipients"]] == [(1, 1), (2, 1), (3, 2)]


def test_a_text_refused_as_opted_out_cannot_be_sent_again(scenario, leader):
    scenario.gateway.script.append(GatewayError(ErrorKind.OPTED_OUT, "opted out", code=21610))
    fields = confirm_fields(check(scenario, "Arrived safely").get_data(as_text=True))
    location = confirm(scenario, fields).location
    scenario.send_all()
    data = progress_json(scenario, location)
    (failed,) = [r for r in data["recipients"] if r["state"] == "failed"]
    assert failed["reason"] == "opted out of texts from this number (STOP)"
    response = scenario.client.post_form(failed["retry_url"])
    page = scenario.client.get(response.location).get_data(as_text=True)
    assert "has opted out of texts (STOP)" in page


def test_only_failed_texts_can_be_sent_again(scenario, leader):
    fields = confirm_fields(check(scenario, "Arrived safely").get_data(as_text=True))
    location = confirm(scenario, fields).location
    first = scenario.outbound(kind=Kind.BROADCAST)[0]
    response = scenario.client.post_form(url(scenario, f"/messages/{first.id}/retry"))
    assert "only a text that failed can be sent again" in scenario.client.get(
        response.location
    ).get_data(as_text=True)
    assert response.location == location


def test_another_trips_broadcast_is_404(scenario, leader, factory, app):
    fields = confirm_fields(check(scenario, "Arrived safely").get_data(as_text=True))
    location = confirm(scenario, fields).location
    other = factory.user("leader")
    client = app.test_client()
    client.login(other.email)
    assert client.get(location).status_code == 404
    assert client.get(location + ".json").status_code == 404
    # The broadcast under another trip's address is not found either.
    other_trip = factory.trip(other)
    broadcast_id = location.rsplit("/", 1)[1]
    assert client.get(f"/trips/{other_trip}/broadcasts/{broadcast_id}").status_code == 404


def test_a_key_from_another_trips_confirmation_is_refused(scenario, leader, factory, app):
    fields = confirm_fields(check(scenario, "Arrived safely").get_data(as_text=True))
    confirm(scenario, fields)
    second = factory.trip(scenario.leader, title="Second trip")
    from tests.helpers import FACTORY
    from tripcomms.relay import numbers as number_ops
    from tripcomms.trips.models import Trip

    with app.app_context():
        number_ops.add_number(FACTORY, "+441234000009")
        number_ops.allocate_number(FACTORY, db.session.get(Trip, second))
        db.session.commit()
    response = scenario.client.post_form(f"/trips/{second}/broadcast/send", fields)
    assert response.status_code == 422
    assert "this form was already used" in response.get_data(as_text=True)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Broadcast)) == 1


def test_recent_broadcasts_are_listed_in_the_inbox(scenario, leader, app):
    fields = confirm_fields(check(scenario, "Arrived safely").get_data(as_text=True))
    location = confirm(scenario, fields).location
    page = scenario.client.get(url(scenario, "/inbox")).get_data(as_text=True)
    assert "Texts to everyone" in page and f'href="{location}"' in page
    # A broadcast is in every thread but starts none.
    assert scenario.client.get(url(scenario, "/inbox.json")).get_json()["threads"] == []
    scenario.text(MARY, "Thanks!")
    thread = scenario.client.get(url(scenario, "/inbox/1.json")).get_json()
    assert [(m["body"], m["how"]) for m in thread["messages"]] == [
        ("Arrived safely", "to everyone on the trip, on the web"),
        ("Thanks!", ""),
    ]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Message)) >= 4

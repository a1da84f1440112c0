"""The simulated handsets at /sim/phones: see a phone's texts, text a trip number from it."""

import re

import pytest
from markupsafe import escape

from tests.texting_trip import MARY, TRIP_NUMBER, texting_trip
from tripcomms import create_app
from tripcomms.extensions import db
from tripcomms.relay.models import Kind, Message
from tripcomms.relay.outbox import OutboxSender


@pytest.fixture
def trip(app, factory, sim):
    return texting_trip(app, factory, sim)


@pytest.fixture
def signed_in(client, trip):
    client.login(trip.leader.email)
    return client


def mary_key(trip):
    return f"contact-{trip.contact_ids[MARY]}"


def test_the_list_shows_parents_school_phones_and_staff_phones(signed_in, trip):
    page = signed_in.get("/sim/phones").get_data(as_text=True)
    for text in (
        "Parents and carers",
        "Mary Jones",
        "#1 on Science Museum",
        "School phones",
        "Trip phone 1",
        "with Liam Leader for Science Museum",
        "Staff personal phones",
        "Helen Head&#39;s own phone",
        "07480 000001 (trip number: Science Museum)",
    ):
        assert text in page, text
    assert f'href="/sim/phones/{mary_key(trip)}"' in page


def test_a_parent_texts_the_trip_and_the_leaders_phone_shows_it_from_the_trip_number(
    app, signed_in, trip, sim, live_sim
):
    page = signed_in.get(f"/sim/phones/{mary_key(trip)}").get_data(as_text=True)
    assert "Mary Jones" in page and "No texts on this phone yet." in page
    assert f'<option selected value="{TRIP_NUMBER}">' in page  # her trip's number

    response = signed_in.post_form(
        f"/sim/phones/{mary_key(trip)}", {"to": TRIP_NUMBER, "body": "Is Sam OK?"}
    )
    assert response.status_code == 303
    assert "Sent." in signed_in.get(response.location).get_data(as_text=True)
    with app.app_context():
        (inbound,) = db.session.query(Message).filter_by(kind=Kind.FROM_CONTACT).all()
        assert inbound.body == "Is Sam OK?" and inbound.trip_id == trip.trip_id

    OutboxSender(app).run_once()
    sim.wait_idle()
    texts = signed_in.get("/sim/phones/phone-1/texts.json").get_json()["texts"]
    assert [(t["direction"], t["other_label"], t["body"]) for t in texts] == [
        (
            "received",
            "07480 000001 (trip number: Science Museum)",
            "#1 Mary Jones (Sam J.): Is Sam OK?\nReply: #1 your message",
        )
    ]
    assert re.fullmatch(r"\d\d:\d\d", texts[0]["time"]) and texts[0]["status"] == "Delivered"
    mine = signed_in.get(f"/sim/phones/{mary_key(trip)}/texts.json").get_json()["texts"]
    assert [(t["direction"], t["body"]) for t in mine] == [("sent", "Is Sam OK?")]


def test_a_photo_is_sent_as_media_and_never_fetched(app, signed_in, trip, sim, live_sim):
    signed_in.post_form(
        f"/sim/phones/{mary_key(trip)}", {"to": TRIP_NUMBER, "body": "Look", "photo": "y"}
    )
    with app.app_context():
        (inbound,) = db.session.query(Message).filter_by(kind=Kind.FROM_CONTACT).all()
        assert inbound.num_media == 1
    assert sim.media_fetches == 0


def test_an_empty_text_is_refused(signed_in, trip, sim):
    response = signed_in.post_form(f"/sim/phones/{mary_key(trip)}", {"to": TRIP_NUMBER})
    assert response.status_code == 422
    assert "write a message first" in response.get_data(as_text=True)
    assert sim.texts_for(MARY) == []


def test_the_handset_form_needs_its_csrf_token(signed_in, trip, sim):
    response = signed_in.post(
        f"/sim/phones/{mary_key(trip)}", data={"to": TRIP_NUMBER, "body": "hello"}
    )
    assert response.status_code == 400
    assert sim.texts_for(MARY) == []


def test_another_number_can_be_played(signed_in, trip):
    response = signed_in.get("/sim/phones?number=07400+999999")
    assert response.status_code == 303
    assert response.location == "/sim/phones/number-447400999999"
    page = signed_in.get(response.location).get_data(as_text=True)
    assert "Another phone" in page
    bad = signed_in.get("/sim/phones?number=12")
    assert bad.status_code == 422 and "is not a valid phone number" in bad.get_data(as_text=True)


def test_unknown_handsets_are_404(signed_in, trip):
    for key in ("contact-999", "phone-x", "nothing", "number-12"):
        assert signed_in.get(f"/sim/phones/{key}").status_code == 404, key


def test_script_in_a_text_is_shown_as_text(signed_in, trip, sim, live_sim):
    attack = "<script>alert(1)</script>"
    signed_in.post_form(f"/sim/phones/{mary_key(trip)}", {"to": TRIP_NUMBER, "body": attack})
    page = signed_in.get(f"/sim/phones/{mary_key(trip)}").get_data(as_text=True)
    assert attack not in page and str(escape(attack)) in page


def test_any_signed_in_user_may_use_it(app, factory, trip):
    auditor = factory.user("auditor")
    client = app.test_client()
    client.login(auditor.email)
    assert client.get("/sim/phones").status_code == 200
    assert "Simulated phones" in client.get("/").get_data(as_text=True)  # in the menu


def test_with_the_twilio_backend_the_handset_pages_do_not_exist(app_config, factory):
    app = create_app({**app_config, "SMS_BACKEND": "twilio"})
    app.test_client_class = type(factory.app.test_client())
    user = factory.user("leader")
    client = app.test_client()
    client.login(user.email)
    assert client.get("/").status_code == 200
    assert "Simulated phones" not in client.get("/").get_data(as_text=True)
    for url in ("/sim/phones", "/sim/phones/contact-1", "/sim/phones/contact-1/texts.json"):
        assert client.get(url).status_code == 404, url
    assert client.post_form("/sim/phones/contact-1", {"body": "x"}).status_code == 404
    with app.app_context():
        db.engine.dispose()  # this second app's own connections


def test_a_phone_switched_off_gets_nothing_until_it_is_on_again(signed_in, trip, sim):
    key = mary_key(trip)
    response = signed_in.post_form(f"/sim/phones/{key}/power", {"state": "off"})
    assert response.status_code == 303
    page = signed_in.get(response.location).get_data(as_text=True)
    assert "Mary Jones&#39;s phone is off" in page and "Switch it on" in page
    assert sim.undeliverable_code(MARY) == 30003
    signed_in.post_form(f"/sim/phones/{key}/power", {"state": "on"})
    assert sim.undeliverable_code(MARY) is None
    assert signed_in.post(f"/sim/phones/{key}/power", data={"state": "off"}).status_code == 400

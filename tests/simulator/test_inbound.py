"""Inbound texts: signed webhooks to the number's SmsUrl, retries, TwiML replies, STOP."""

from __future__ import annotations

import re

import pytest
import requests

from tests.simulator.fixtures import AUTH_TOKEN, OTHER_PARENT, PARENT, TWILIO_NUMBER
from tripcomms.relay.gateway import ErrorKind, GatewayError
from tripcomms.simulator import SimulatorError

SID = "AC" + "1" * 32


@pytest.fixture
def number_sid(sim, receiver) -> str:
    sid = sim.add_number(TWILIO_NUMBER)
    sim.update_number(sid, {"SmsUrl": receiver.url + "/hooks/sms"})
    return sid


def test_an_inbound_text_is_posted_signed_to_the_sms_url(sim, receiver, number_sid):
    result = sim.send_from_handset(PARENT, TWILIO_NUMBER, "Is Sam OK?")

    [post] = receiver.received()
    assert post.path == "/hooks/sms"
    assert post.url == receiver.url + "/hooks/sms"
    assert post.signature_is_valid()
    assert re.fullmatch(r"SM[0-9a-f]{32}", result.sid)
    assert (result.status, result.body) == (200, receiver.twiml)
    assert post.form["MessageSid"] == post.form["SmsMessageSid"] == result.sid
    expected = {
        "AccountSid": SID,
        "From": PARENT,
        "To": TWILIO_NUMBER,
        "Body": "Is Sam OK?",
        "NumMedia": "0",
        "NumSegments": "1",
        "SmsStatus": "received",
        "ApiVersion": "2010-04-01",
        "FromCountry": "GB",
        "ToCountry": "GB",
    }
    assert {name: post.form[name] for name in expected} == expected
    assert post.headers["I-Twilio-Idempotency-Token"]
    [text] = sim.texts_for(PARENT)
    assert (text.sid, text.direction, text.to, text.body) == (
        result.sid,
        "sent",
        TWILIO_NUMBER,
        "Is Sam OK?",
    )
    assert sim.message(result.sid).direction == "inbound"


def test_without_an_sms_url_the_webhook_goes_to_the_public_base_url(app, sim, receiver):
    app.config["PUBLIC_BASE_URL"] = receiver.url
    sim.add_number(TWILIO_NUMBER)

    sim.send_from_handset(PARENT, TWILIO_NUMBER, "hello")

    [post] = receiver.received()
    assert post.path == "/twilio/sms"
    assert post.signature_is_valid()


def test_media_is_described_never_attached(app, live_sim, sim, receiver, number_sid):
    result = sim.send_from_handset(PARENT, TWILIO_NUMBER, "", ["image/jpeg", "image/png"])

    form = receiver.received()[0].form
    assert form["NumMedia"] == "2"
    assert [form["MediaContentType0"], form["MediaContentType1"]] == ["image/jpeg", "image/png"]
    media_url = form["MediaUrl0"]
    assert media_url.startswith(
        f"{live_sim}/sim/twilio/2010-04-01/Accounts/{SID}/Messages/{result.sid}/Media/ME"
    )
    assert sim.texts_for(PARENT)[0].media_types == ("image/jpeg", "image/png")
    assert sim.media_fetches == 0

    # A fetch is counted, so a test can prove that the app never makes one.
    response = requests.get(media_url, auth=(SID, AUTH_TOKEN), timeout=5)
    assert response.status_code == 404
    assert sim.media_fetches == 1


def test_repost_sends_the_same_webhook_again(sim, receiver, number_sid):
    first = sim.send_from_handset(PARENT, TWILIO_NUMBER, "See you at 4")

    again = sim.repost(first.sid)

    one, two = receiver.received()
    assert again.sid == first.sid
    assert one.form == two.form
    assert one.headers["X-Twilio-Signature"] == two.headers["X-Twilio-Signature"]
    assert one.headers["I-Twilio-Idempotency-Token"] == two.headers["I-Twilio-Idempotency-Token"]
    assert two.signature_is_valid()
    assert len(sim.texts_for(PARENT)) == 1


@pytest.mark.parametrize("signature", ["bad", "missing"])
def test_a_webhook_can_be_sent_badly_signed(sim, receiver, number_sid, signature):
    result = sim.send_from_handset(PARENT, TWILIO_NUMBER, "hello", signature=signature)
    sim.repost(result.sid, signature=signature)

    for post in receiver.received():
        assert not post.signature_is_valid()
        assert ("X-Twilio-Signature" in post.headers) is (signature == "bad")


def test_an_unknown_signature_mode_is_refused(sim, receiver, number_sid):
    with pytest.raises(ValueError, match="signature must be one of"):
        sim.send_from_handset(PARENT, TWILIO_NUMBER, "hello", signature="forged")


def test_twiml_message_replies_land_on_the_handset(sim, receiver, number_sid):
    receiver.twiml = (
        '<?xml version="1.0" encoding="UTF-8"?><Response>'
        "<Message>Thanks, the trip team has your message.</Message>"
        f'<Message to="{OTHER_PARENT}"><Body>A copy</Body></Message>'
        "</Response>"
    )

    result = sim.send_from_handset(PARENT, TWILIO_NUMBER, "Is Sam OK?")

    sent, reply = sim.texts_for(PARENT)
    assert sent.sid == result.sid
    assert (reply.direction, reply.from_, reply.body) == (
        "received",
        TWILIO_NUMBER,
        "Thanks, the trip team has your message.",
    )
    assert sim.message(reply.sid).direction == "outbound-reply"
    [copy] = sim.texts_for(OTHER_PARENT)
    assert (copy.from_, copy.body) == (TWILIO_NUMBER, "A copy")
    assert sim.deliveries_of(PARENT, "Thanks, the trip team has your message.") == 1

    # A retried webhook whose answer repeats the reply sends it twice, as Twilio would.
    sim.repost(result.sid)
    assert sim.duplicate_deliveries() == {
        (PARENT, "Thanks, the trip team has your message."): 2,
        (OTHER_PARENT, "A copy"): 2,
    }


@pytest.mark.parametrize(
    ("twiml", "failures"),
    [
        ('<?xml version="1.0" encoding="UTF-8"?><Response/>', 0),
        ("<Response><Message>not sent: the answer was an error</Message></Response>", 1),
        ("<html><body>Not a TwiML answer</body></html>", 0),
        ("<Response><Message>broken", 0),
    ],
)
def test_no_reply_without_a_good_twiml_message(sim, receiver, number_sid, twiml, failures):
    receiver.twiml, receiver.failures = twiml, failures

    result = sim.send_from_handset(PARENT, TWILIO_NUMBER, "hello")

    assert result.status == (500 if failures else 200)
    assert [t.direction for t in sim.texts_for(PARENT)] == ["sent"]


def test_stop_opts_the_handset_out_and_start_back_in(app, gateway, sim, receiver, number_sid):
    sim.send_from_handset(PARENT, TWILIO_NUMBER, " stop ")
    assert sim.is_opted_out(PARENT, TWILIO_NUMBER)

    with pytest.raises(GatewayError) as caught:
        gateway.send(PARENT, TWILIO_NUMBER, "Trip news")
    assert (caught.value.kind, caught.value.code) == (ErrorKind.OPTED_OUT, 21610)
    assert gateway.send(OTHER_PARENT, TWILIO_NUMBER, "Trip news").status == "queued"

    sim.send_from_handset(PARENT, TWILIO_NUMBER, "START")
    assert gateway.send(PARENT, TWILIO_NUMBER, "Trip news").status == "queued"
    assert [p.form["Body"] for p in receiver.received()] == [" stop ", "START"]


def test_texts_to_a_number_the_account_lacks_are_refused(sim, receiver):
    with pytest.raises(SimulatorError):
        sim.send_from_handset(PARENT, TWILIO_NUMBER, "hello")
    with pytest.raises(SimulatorError):
        sim.repost("SM" + "0" * 32)
    assert receiver.received() == []

"""TwilioGateway through the real twilio library, against the simulator over real HTTP."""

from __future__ import annotations

import logging
import re
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.simulator.fixtures import OTHER_PARENT, PARENT, TWILIO_NUMBER
from tripcomms.config import ConfigError
from tripcomms.relay.gateway import (
    DEFAULT_API_BASE_URL,
    ErrorKind,
    GatewayError,
    IncomingNumber,
    SendResult,
    SentMessage,
    TwilioGateway,
    api_base_url,
    classify,
    gateway_from_config,
)

SID = "AC" + "1" * 32
TOKEN = "test-auth-token"
SM_SID = re.compile(r"^SM[0-9a-f]{32}$")


def test_send_returns_the_sid_and_queued_and_fetch_follows_delivery(gateway, sim, twilio_number):
    result = gateway.send(PARENT, TWILIO_NUMBER, "The coach is back at 3.15", None)

    assert isinstance(result, SendResult)
    assert SM_SID.match(result.sid)
    assert result.status == "queued"
    stored = sim.message(result.sid)
    assert (stored.to, stored.from_, stored.body) == (PARENT, TWILIO_NUMBER, stored.body)
    assert stored.body == "The coach is back at 3.15"
    assert stored.direction == "outbound-api"

    sim.wait_idle()
    assert gateway.fetch(result.sid) == SendResult(result.sid, "delivered")
    [text] = sim.texts_for(PARENT)
    assert (text.direction, text.from_, text.body) == (
        "received",
        TWILIO_NUMBER,
        "The coach is back at 3.15",
    )
    assert sim.deliveries(result.sid) == 1


def test_fetch_of_an_unknown_message_is_rejected_with_20404(gateway):
    with pytest.raises(GatewayError) as caught:
        gateway.fetch("SM" + "0" * 32)
    assert (caught.value.kind, caught.value.code, caught.value.http_status) == (
        ErrorKind.REJECTED,
        20404,
        404,
    )


def test_list_numbers_reads_every_page(gateway, sim):
    # The library asks for 50 a page; 55 numbers prove that it follows next_page_uri.
    numbers = [f"+4477123456{n:02d}" for n in range(55)]
    sids = [sim.add_number(number) for number in numbers]

    listed = gateway.list_numbers()

    assert [n.phone_number for n in listed] == numbers
    assert [n.sid for n in listed] == sids
    assert listed[0] == IncomingNumber(sids[0], numbers[0], None, None)


def test_configure_number_sets_the_sms_url_by_post_and_the_status_callback(gateway, sim):
    sid = sim.add_number(TWILIO_NUMBER)

    gateway.configure_number(
        sid, "https://trips.example/twilio/sms", "https://trips.example/twilio/status"
    )

    [number] = sim.numbers()
    assert number.sms_url == "https://trips.example/twilio/sms"
    assert number.sms_method == "POST"
    assert number.status_callback == "https://trips.example/twilio/status"
    assert gateway.list_numbers() == [
        IncomingNumber(
            sid,
            TWILIO_NUMBER,
            "https://trips.example/twilio/sms",
            "https://trips.example/twilio/status",
        )
    ]


def test_configure_an_unknown_number_is_rejected(gateway):
    with pytest.raises(GatewayError) as caught:
        gateway.configure_number("PN" + "0" * 32, "https://a.example/s", "https://a.example/t")
    assert (caught.value.kind, caught.value.code) == (ErrorKind.REJECTED, 20404)


@pytest.mark.parametrize(("account_sid", "token"), [(SID, "wrong-token"), ("AC" + "2" * 32, TOKEN)])
def test_wrong_credentials_are_rejected_with_20003(live_sim, twilio_number, account_sid, token):
    with TwilioGateway(account_sid, token, live_sim + "/sim/twilio", timeout=5) as gateway:
        with pytest.raises(GatewayError) as caught:
            gateway.send(PARENT, TWILIO_NUMBER, "hello")
        assert (caught.value.kind, caught.value.code, caught.value.http_status) == (
            ErrorKind.REJECTED,
            20003,
            401,
        )
        with pytest.raises(GatewayError, match="HTTP 401") as listing:
            gateway.list_numbers()
        assert (listing.value.kind, listing.value.code) == (ErrorKind.REJECTED, 20003)


@pytest.mark.parametrize(
    ("outcome", "kind", "code", "http_status"),
    [
        ("429", ErrorKind.RETRYABLE, 20429, 429),
        ("500", ErrorKind.RETRYABLE, 20500, 500),
        ("503", ErrorKind.RETRYABLE, 20503, 503),
        ("21610", ErrorKind.OPTED_OUT, 21610, 400),
        ("21211", ErrorKind.INVALID_NUMBER, 21211, 400),
        ("21614", ErrorKind.INVALID_NUMBER, 21614, 400),
        ("21617", ErrorKind.REJECTED, 21617, 400),
    ],
)
def test_each_twilio_error_maps_to_its_kind(
    gateway, sim, twilio_number, outcome, kind, code, http_status
):
    sim.script(outcome)

    with pytest.raises(GatewayError) as caught:
        gateway.send(PARENT, TWILIO_NUMBER, "Back at 3")

    error = caught.value
    assert (error.kind, error.code, error.http_status) == (kind, code, http_status)
    assert error.retryable is (kind is ErrorKind.RETRYABLE)
    assert error.outcome_unknown is False  # an answer came: Twilio created nothing
    assert PARENT not in str(error) and "Back at 3" not in str(error)
    assert sim.messages() == []


def test_invalid_to_and_a_from_that_is_not_ours_are_classified(gateway, sim, twilio_number):
    with pytest.raises(GatewayError) as invalid:
        gateway.send("+4412", TWILIO_NUMBER, "hello")
    assert (invalid.value.kind, invalid.value.code) == (ErrorKind.INVALID_NUMBER, 21211)

    with pytest.raises(GatewayError) as not_ours:
        gateway.send(PARENT, OTHER_PARENT, "hello")
    assert (not_ours.value.kind, not_ours.value.code) == (ErrorKind.REJECTED, 21606)

    sim.reject_recipient(OTHER_PARENT)
    with pytest.raises(GatewayError) as opted_out:
        gateway.send(OTHER_PARENT, TWILIO_NUMBER, "hello")
    assert (opted_out.value.kind, opted_out.value.code) == (ErrorKind.OPTED_OUT, 21610)

    assert gateway.send(PARENT, TWILIO_NUMBER, "hello").status == "queued"


def test_a_timeout_is_retryable_and_creates_nothing(app, live_sim, sim, twilio_number):
    sim.set_timeout_sleep(1.0)
    sim.script("timeout")
    with TwilioGateway(SID, TOKEN, live_sim + "/sim/twilio", timeout=0.25) as gateway:
        started = time.monotonic()
        with pytest.raises(GatewayError) as caught:
            gateway.send(PARENT, TWILIO_NUMBER, "hello")
        assert time.monotonic() - started < 0.9

    assert (caught.value.kind, caught.value.code, caught.value.http_status) == (
        ErrorKind.RETRYABLE,
        None,
        None,
    )
    assert caught.value.outcome_unknown is True  # the client cannot tell this from the next
    sim.wait_idle()
    assert sim.messages() == []
    assert [call.http_status for call in sim.create_calls()] == [503]


def test_a_timeout_after_twilio_accepted_delivers_and_a_retry_duplicates(
    live_sim, sim, twilio_number
):
    # The gateway alone: the client gave up, Twilio had the text, a blind retry sends it again.
    # (The outbox looks with find_sent first: tests/relay/test_unknown_outcome.py.)
    sim.set_timeout_sleep(0.6)
    sim.script("timeout-accepted")
    with TwilioGateway(SID, TOKEN, live_sim + "/sim/twilio", timeout=0.2) as gateway:
        with pytest.raises(GatewayError) as caught:
            gateway.send(PARENT, TWILIO_NUMBER, "Lunch at 12")
        assert caught.value.kind is ErrorKind.RETRYABLE
        gateway.send(PARENT, TWILIO_NUMBER, "Lunch at 12")

    assert caught.value.outcome_unknown is True
    sim.wait_idle()
    assert sim.deliveries_of(PARENT, "Lunch at 12") == 2
    assert sim.duplicate_deliveries() == {(PARENT, "Lunch at 12"): 2}


def test_a_refused_connection_is_retryable():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    gateway = TwilioGateway(SID, TOKEN, f"http://127.0.0.1:{port}", timeout=2)
    with gateway, pytest.raises(GatewayError) as caught:
        gateway.send(PARENT, TWILIO_NUMBER, "hello")
    assert (caught.value.kind, caught.value.code, caught.value.http_status) == (
        ErrorKind.RETRYABLE,
        None,
        None,
    )
    assert caught.value.outcome_unknown is False  # never connected: nothing reached Twilio


def test_a_connection_dropped_after_the_request_went_has_an_unknown_outcome():
    # A server that reads the request and hangs up without answering.
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def hang_up() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    gateway = TwilioGateway(SID, TOKEN, f"http://127.0.0.1:{port}", timeout=2)
    with gateway, pytest.raises(GatewayError, match="connection to Twilio failed") as caught:
        gateway.send(PARENT, TWILIO_NUMBER, "hello")
    thread.join(5)
    listener.close()
    assert (caught.value.kind, caught.value.outcome_unknown) == (ErrorKind.RETRYABLE, True)


def test_find_sent_finds_the_text_a_timed_out_send_created(live_sim, sim, twilio_number):
    sim.set_timeout_sleep(0.6)
    sim.script("timeout-accepted")
    started = datetime.now(UTC)
    with TwilioGateway(SID, TOKEN, live_sim + "/sim/twilio", timeout=0.2) as gateway:
        with pytest.raises(GatewayError):
            gateway.send(PARENT, TWILIO_NUMBER, "Lunch at 12")
        sim.wait_idle()
        found = gateway.find_sent(PARENT, TWILIO_NUMBER, "Lunch at 12", started)

    [created] = sim.create_calls()
    assert found == [SentMessage(created.sid, "delivered", found[0].date_created)]
    assert found[0].date_created >= started.replace(microsecond=0)
    assert sim.deliveries_of(PARENT, "Lunch at 12") == 1


def test_find_sent_matches_the_body_the_direction_and_the_time(
    gateway, sim, twilio_number, receiver
):
    before = datetime.now(UTC) - timedelta(seconds=1)
    first = gateway.send(PARENT, TWILIO_NUMBER, "Coach at 4", None)
    gateway.send(PARENT, TWILIO_NUMBER, "coach at 4", None)
    gateway.send(PARENT, TWILIO_NUMBER, "Coach at 4 ", None)
    gateway.send(OTHER_PARENT, TWILIO_NUMBER, "Coach at 4", None)
    second = gateway.send(PARENT, TWILIO_NUMBER, "Coach at 4", None)
    # A TwiML reply has the same number, recipient and body, but the API did not send it.
    sim.update_number(sim.add_number(TWILIO_NUMBER), {"SmsUrl": receiver.url + "/sms"})
    receiver.twiml = "<Response><Message>Coach at 4</Message></Response>"
    sim.send_from_handset(PARENT, TWILIO_NUMBER, "When is the coach?")
    sim.wait_idle()
    assert sim.deliveries_of(PARENT, "Coach at 4") == 3

    found = gateway.find_sent(PARENT, TWILIO_NUMBER, "Coach at 4", before)
    later = gateway.find_sent(
        PARENT, TWILIO_NUMBER, "Coach at 4", datetime.now(UTC) + timedelta(seconds=2)
    )

    assert [m.sid for m in found] == [first.sid, second.sid]  # oldest first
    assert {m.status for m in found} == {"delivered"}
    assert later == []
    with pytest.raises(ValueError, match="timezone-aware"):
        gateway.find_sent(PARENT, TWILIO_NUMBER, "Coach at 4", datetime.now())


def test_find_sent_reads_every_page(gateway, sim, twilio_number):
    before = datetime.now(UTC) - timedelta(seconds=1)
    form = {"To": PARENT, "From": TWILIO_NUMBER, "Body": "Same text"}
    sids = [sim.create_message(form)["sid"] for _ in range(105)]  # past one page of 100
    sim.wait_idle()

    found = gateway.find_sent(PARENT, TWILIO_NUMBER, "Same text", before)

    assert sorted(m.sid for m in found) == sorted(sids)


def test_a_failed_look_up_is_a_gateway_error(live_sim, sim, twilio_number):
    sim.set_latency(0.5)
    slow_gateway = TwilioGateway(SID, TOKEN, live_sim + "/sim/twilio", timeout=0.2)
    with slow_gateway, pytest.raises(GatewayError, match="look for a sent text") as slow:
        slow_gateway.find_sent(PARENT, TWILIO_NUMBER, "hello", datetime.now(UTC))
    wrong = TwilioGateway(SID, "wrong-token", live_sim + "/sim/twilio", timeout=2)
    with wrong, pytest.raises(GatewayError) as refused:
        wrong.find_sent(PARENT, TWILIO_NUMBER, "hello", datetime.now(UTC))

    assert slow.value.kind is ErrorKind.RETRYABLE
    assert (refused.value.kind, refused.value.code, refused.value.http_status) == (
        ErrorKind.REJECTED,
        20003,
        401,
    )


def test_scripted_429_then_201(gateway, sim, twilio_number):
    sim.script("429", "500", "ok")

    for expected in (429, 500):
        with pytest.raises(GatewayError) as caught:
            gateway.send(PARENT, TWILIO_NUMBER, "Rain coats please")
        assert caught.value.http_status == expected
    result = gateway.send(PARENT, TWILIO_NUMBER, "Rain coats please")

    assert [(c.http_status, c.sid) for c in sim.create_calls()] == [
        (429, None),
        (500, None),
        (201, result.sid),
    ]
    sim.wait_idle()
    assert sim.deliveries_of(PARENT, "Rain coats please") == 1


def test_added_latency_slows_every_call(gateway, sim, twilio_number):
    sim.set_latency(0.2)

    started = time.monotonic()
    gateway.send(PARENT, TWILIO_NUMBER, "hello")
    gateway.list_numbers()
    elapsed = time.monotonic() - started

    assert elapsed >= 0.4


def test_one_gateway_serves_many_threads(gateway, sim, twilio_number):
    results: list[SendResult] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def send_five(worker: int) -> None:
        for n in range(5):
            try:
                result = gateway.send(PARENT, TWILIO_NUMBER, f"text {worker}-{n}")
            except BaseException as exc:  # collected and re-raised by the test thread
                errors.append(exc)
                return
            with lock:
                results.append(result)

    threads = [threading.Thread(target=send_five, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert errors == []
    assert len({r.sid for r in results}) == 40
    sim.wait_idle()
    assert len(sim.texts_for(PARENT)) == 40
    assert all(sim.deliveries(r.sid) == 1 for r in results)
    assert sim.duplicate_deliveries() == {}


def test_the_network_guard_stops_a_call_to_the_real_twilio():
    with TwilioGateway(SID, TOKEN, timeout=2) as gateway:
        assert gateway.base_url == DEFAULT_API_BASE_URL
        with pytest.raises(RuntimeError, match="tests may not"):
            gateway.send(PARENT, TWILIO_NUMBER, "hello")


def test_the_twilio_backend_uses_the_real_api_address(app_config):
    config = {**app_config, "SMS_BACKEND": "twilio"}
    with gateway_from_config(config) as gateway:
        assert gateway.base_url == "https://api.twilio.com"
        with pytest.raises(RuntimeError, match="tests may not"):
            gateway.list_numbers()


def test_gateway_from_config_reads_the_settings_at_call_time(app):
    app.config["PUBLIC_BASE_URL"] = "http://127.0.0.1:6123"
    app.config["TWILIO_TIMEOUT_SECONDS"] = 3
    with gateway_from_config(app.config) as gateway:
        assert gateway.base_url == "http://127.0.0.1:6123/sim/twilio"
        assert gateway.timeout == 3
        assert gateway.account_sid == SID


def test_api_base_url_choices():
    sim = {"SMS_BACKEND": "simulator", "PUBLIC_BASE_URL": "http://127.0.0.1:5000/"}
    assert api_base_url({**sim, "TWILIO_API_BASE_URL": DEFAULT_API_BASE_URL}) == (
        "http://127.0.0.1:5000/sim/twilio"
    )
    assert api_base_url({**sim, "TWILIO_API_BASE_URL": "http://127.0.0.1:4010/"}) == (
        "http://127.0.0.1:4010"
    )
    assert api_base_url({"SMS_BACKEND": "twilio", "TWILIO_API_BASE_URL": DEFAULT_API_BASE_URL}) == (
        DEFAULT_API_BASE_URL
    )


def test_gateway_from_config_needs_credentials():
    with pytest.raises(ConfigError, match="TWILIO_AUTH_TOKEN"):
        gateway_from_config({"TWILIO_ACCOUNT_SID": SID, "SMS_BACKEND": "twilio"})


@pytest.mark.parametrize(
    ("http_status", "code", "kind"),
    [
        (None, None, ErrorKind.RETRYABLE),
        (429, 20429, ErrorKind.RETRYABLE),
        (500, None, ErrorKind.RETRYABLE),
        (502, None, ErrorKind.RETRYABLE),
        (503, 21610, ErrorKind.RETRYABLE),
        (400, 21610, ErrorKind.OPTED_OUT),
        (400, 21211, ErrorKind.INVALID_NUMBER),
        (400, 21614, ErrorKind.INVALID_NUMBER),
        (400, 21606, ErrorKind.REJECTED),
        (401, 20003, ErrorKind.REJECTED),
        (404, None, ErrorKind.REJECTED),
    ],
)
def test_classify(http_status, code, kind):
    assert classify(http_status, code) is kind


def test_no_number_or_body_reaches_the_logs(gateway, sim, twilio_number, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    sim.script("21211")
    with pytest.raises(GatewayError):
        gateway.send(PARENT, TWILIO_NUMBER, "Secret meeting point")
    gateway.send(PARENT, TWILIO_NUMBER, "Secret meeting point", receiver.url + "/status")
    receiver.failures = 10
    sim.configure(callback_attempts=2)
    gateway.send(OTHER_PARENT, TWILIO_NUMBER, "Secret meeting point", receiver.url + "/status")
    sim.wait_idle()

    assert "dropped after 2 attempts" in caplog.text
    for secret in (PARENT, OTHER_PARENT, TWILIO_NUMBER, "Secret meeting point"):
        assert secret not in caplog.text

"""Delivery to handsets and signed status callbacks, over real HTTP."""

from __future__ import annotations

import threading

import pytest

from tests.simulator.fixtures import PARENT, TWILIO_NUMBER

SID = "AC" + "1" * 32


def test_status_callbacks_arrive_signed_in_order(gateway, sim, twilio_number, receiver):
    callback = receiver.url + "/twilio/status?trip=7"
    result = gateway.send(PARENT, TWILIO_NUMBER, "Arrived safely", callback)

    sent, delivered = receiver.wait_for(2, "/twilio/status")
    sim.wait_idle()

    assert [sent.form["MessageStatus"], delivered.form["MessageStatus"]] == ["sent", "delivered"]
    for post in (sent, delivered):
        assert post.url == callback
        assert post.signature_is_valid()
        assert not post.signature_is_valid("another-token")
        assert post.form["MessageSid"] == post.form["SmsSid"] == result.sid
        assert post.form["AccountSid"] == SID
        assert (post.form["From"], post.form["To"]) == (TWILIO_NUMBER, PARENT)
        assert "ErrorCode" not in post.form
        assert post.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert [r.delivered for r in sim.callbacks()] == [True, True]
    assert sim.message(result.sid).status == "delivered"
    assert sim.deliveries(result.sid) == 1


def test_an_undeliverable_number_ends_undelivered_with_30003(gateway, sim, twilio_number, receiver):
    sim.make_undeliverable(PARENT)
    result = gateway.send(PARENT, TWILIO_NUMBER, "hello", receiver.url + "/status")

    sent, undelivered = receiver.wait_for(2)
    sim.wait_idle()

    assert sent.form["MessageStatus"] == "sent"
    assert undelivered.form["MessageStatus"] == "undelivered"
    assert undelivered.form["ErrorCode"] == "30003"
    assert undelivered.signature_is_valid()
    assert sim.texts_for(PARENT) == []
    assert sim.deliveries(result.sid) == 0
    assert gateway.fetch(result.sid).status == "undelivered"
    assert sim.message(result.sid).error_code == 30003


def test_a_failed_callback_is_retried(gateway, sim, twilio_number, receiver):
    receiver.failures = 2
    result = gateway.send(PARENT, TWILIO_NUMBER, "hello", receiver.url + "/status")

    posts = receiver.wait_for(4)
    sim.wait_idle()

    assert [p.form["MessageStatus"] for p in posts] == ["sent", "sent", "sent", "delivered"]
    assert len({p.headers["X-Twilio-Signature"] for p in posts[:3]}) == 1
    first, second = sim.callbacks()
    assert (first.status, first.attempts, first.delivered, first.http_status) == (
        "sent",
        3,
        True,
        200,
    )
    assert (second.status, second.attempts) == ("delivered", 1)
    assert sim.deliveries(result.sid) == 1


def test_a_callback_that_keeps_failing_is_dropped_and_delivery_goes_on(
    gateway, sim, twilio_number, receiver, caplog
):
    sim.configure(callback_attempts=2)
    receiver.failures = 100
    result = gateway.send(PARENT, TWILIO_NUMBER, "hello", receiver.url + "/status")

    sim.wait_idle()

    assert len(receiver.received()) == 4
    assert [(c.status, c.attempts, c.delivered, c.http_status) for c in sim.callbacks()] == [
        ("sent", 2, False, 500),
        ("delivered", 2, False, 500),
    ]
    assert sim.message(result.sid).status == "delivered"
    assert f"status callback sent for {result.sid} dropped after 2 attempts" in caplog.text


def test_a_callback_to_a_closed_port_is_dropped(gateway, sim, twilio_number):
    sim.configure(callback_attempts=2)
    result = gateway.send(PARENT, TWILIO_NUMBER, "hello", "http://127.0.0.1:9/status")

    sim.wait_idle()

    assert [(c.attempts, c.http_status, c.delivered) for c in sim.callbacks()] == [
        (2, None, False),
        (2, None, False),
    ]
    assert sim.deliveries(result.sid) == 1


def test_without_a_status_callback_the_text_is_still_delivered(gateway, sim, twilio_number):
    result = gateway.send(PARENT, TWILIO_NUMBER, "hello")

    sim.wait_idle()

    assert sim.message(result.sid).status == "delivered"
    assert sim.message(result.sid).date_sent is not None
    assert sim.callbacks() == []


def test_wait_idle_raises_while_work_is_pending(gateway, sim, twilio_number):
    sim.configure(delivery_delay=5)
    gateway.send(PARENT, TWILIO_NUMBER, "hello")

    with pytest.raises(TimeoutError, match="still has 1 jobs"):
        sim.wait_idle(0.1)


def test_close_drops_pending_deliveries_and_stops_the_workers(gateway, sim, twilio_number):
    sim.configure(delivery_delay=5)
    result = gateway.send(PARENT, TWILIO_NUMBER, "hello")
    assert any(t.name == "simulator-worker" for t in threading.enumerate())

    sim.close()

    assert not any(t.name == "simulator-worker" for t in threading.enumerate())
    assert sim.message(result.sid).status == "queued"
    sim.wait_idle(0.1)
    sim.close()  # a second close does nothing

"""The relay end to end over real HTTP: the real twilio library, the simulator, signed
webhooks and status callbacks, the outbox."""

import time

from sqlalchemy import update

from tests.relay.scenario import SCHOOL_PHONE, TRIP_NUMBER, e164
from tripcomms.extensions import db
from tripcomms.relay.models import Kind, Message, Status
from tripcomms.relay.outbox import OutboxSender
from tripcomms.types import utcnow

MARY = e164(1)


def wait_for(check, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting")


def test_parent_to_leader_and_back_delivered(scenario, app, sim, live_sim, runner):
    sim.add_number(TRIP_NUMBER)
    result = runner.invoke(args=["numbers", "sync"])
    assert result.exit_code == 0, result.output
    assert f"texts go to {live_sim}/twilio/sms" in result.output
    sender = OutboxSender(app)  # the real gateway, pointed at the simulator

    inbound = sim.send_from_handset(MARY, TRIP_NUMBER, "Are we on time?")
    assert inbound.status == 200
    assert sender.run_once() == 1
    sim.wait_idle()
    leader_phone = sim.texts_for(SCHOOL_PHONE)
    assert [(t.from_, t.body) for t in leader_phone if t.direction == "received"] == [
        (TRIP_NUMBER, "#1 Mary Jones (Sam J.): Are we on time?\nReply: #1 your message")
    ]

    sim.send_from_handset(SCHOOL_PHONE, TRIP_NUMBER, "#1 Yes, back at 15:30")
    assert sender.run_once() == 2  # the reply and the receipt
    sim.wait_idle()
    mary_phone = [t for t in sim.texts_for(MARY) if t.direction == "received"]
    assert [(t.from_, t.body) for t in mary_phone] == [(TRIP_NUMBER, "Yes, back at 15:30")]

    def delivered():
        forward = scenario.outbound(kind=Kind.FORWARD)[0]
        reply = scenario.outbound(kind=Kind.TO_CONTACT)[0]
        return forward.status == reply.status == Status.DELIVERED

    wait_for(delivered)
    assert sim.media_fetches == 0
    assert sim.duplicate_deliveries() == {}


def test_scripted_faults_through_the_real_library(scenario, app, sim, live_sim):
    app.config.update(SEND_BACKOFF_SECONDS=0.01, TWILIO_TIMEOUT_SECONDS=0.5)
    sim.add_number(TRIP_NUMBER)
    sim.set_timeout_sleep(1.0)
    sim.script("429", "500", "timeout", "ok")
    sim.send_from_handset(MARY, TRIP_NUMBER, "hello")
    sender = OutboxSender(app)
    for _ in range(4):
        sender.run_once()
        time.sleep(0.05)
        with app.app_context():
            db.session.execute(update(Message).values(next_attempt_at=utcnow()))
            db.session.commit()
    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert forward.attempts == 4
    assert forward.status in (Status.QUEUED, Status.SENT, Status.DELIVERED)
    sim.wait_idle()
    assert [t.body for t in sim.texts_for(SCHOOL_PHONE) if t.direction == "received"] == [
        "#1 Mary Jones (Sam J.): hello\nReply: #1 your message"
    ]

"""A send whose outcome is unknown is looked for at Twilio before it is sent again.

Twilio's Messages create has no idempotency key: after a timeout the text may or may not have
been taken. The simulator's ``timeout`` and ``timeout-accepted`` outcomes are the two cases;
these tests run the outbox through the real twilio library against it over real HTTP, and a
FakeGateway for the cases the simulator cannot stage.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.relay.scenario import (
    SCHOOL_PHONE,
    TRIP_NUMBER,
    ErrorKind,
    GatewayError,
    LostAnswer,
    e164,
)
from tripcomms.extensions import db
from tripcomms.relay.gateway import TwilioGateway, gateway_from_config
from tripcomms.relay.models import Direction, Kind, Message, Status
from tripcomms.relay.outbox import UNKNOWN_OUTCOME_SKEW, OutboxSender
from tripcomms.types import utcnow

MARY = e164(1)
PARENTS = (e164(1), e164(2), e164(3))
FORWARD = "#1 Mary Jones (Sam J.): Is the coach late?\nReply: #1 your message"


class CountingGateway:
    """The real TwilioGateway, counting the look-ups it is asked for."""

    def __init__(self, inner: TwilioGateway) -> None:
        self.inner = inner
        self.lookups = 0

    def send(self, *args):
        return self.inner.send(*args)

    def find_sent(self, *args):
        self.lookups += 1
        return self.inner.find_sent(*args)


@pytest.fixture
def twilio(app, sim, live_sim) -> Iterator[CountingGateway]:
    """The trip number at the simulated Twilio, a client that gives up after 1 s (time enough
    for any answer on a busy machine), and a short backoff."""
    app.config.update(SEND_BACKOFF_SECONDS=0.01, TWILIO_TIMEOUT_SECONDS=1.0)
    sim.add_number(TRIP_NUMBER)
    sim.set_timeout_sleep(2.0)
    with gateway_from_config(app.config) as gateway:
        yield CountingGateway(gateway)


def due_now(app) -> None:
    with app.app_context():
        db.session.execute(update(Message).values(next_attempt_at=utcnow()))
        db.session.commit()


def wait_for(check, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.02)


def created_sids(sim) -> list[str]:
    return [call.sid for call in sim.create_calls() if call.http_status == 201]


# --- Through the simulator ----------------------------------------------------------------


def test_a_text_twilio_took_despite_the_timeout_is_found_and_delivered_once(
    scenario, app, sim, twilio
):
    sim.script("timeout-accepted")
    sim.send_from_handset(MARY, TRIP_NUMBER, "Is the coach late?")
    sender = OutboxSender(app, gateway=twilio)

    assert sender.run_once() == 1
    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert (forward.status, forward.twilio_sid) == (Status.PENDING, None)
    assert forward.unknown_outcome_at == forward.attempt_started_at
    sim.wait_idle()  # Twilio creates and delivers the text after the client gave up
    [taken] = created_sids(sim)

    due_now(app)
    assert sender.run_once() == 1

    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert forward.twilio_sid == taken
    assert (forward.attempts, forward.unknown_outcome_at) == (2, None)
    assert twilio.lookups == 1
    assert created_sids(sim) == [taken]  # no second create
    sim.wait_idle()
    assert sim.deliveries_of(SCHOOL_PHONE, FORWARD) == 1
    assert sim.duplicate_deliveries() == {}
    # The status callbacks came before the sid was known; they are applied now.
    wait_for(lambda: scenario.outbound(kind=Kind.FORWARD)[0].status == Status.DELIVERED)


def test_a_timeout_twilio_did_not_take_is_sent_once_after_the_look_up(scenario, app, sim, twilio):
    sim.script("timeout")
    sim.send_from_handset(MARY, TRIP_NUMBER, "Is the coach late?")
    sender = OutboxSender(app, gateway=twilio)
    sender.run_once()
    sim.wait_idle()
    assert sim.messages()[-1].direction == "inbound"  # nothing was created

    due_now(app)
    sender.run_once()

    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert twilio.lookups == 1
    assert [call.http_status for call in sim.create_calls()] == [503, 201]
    assert forward.twilio_sid == created_sids(sim)[0]
    assert (forward.attempts, forward.unknown_outcome_at) == (2, None)
    sim.wait_idle()
    assert sim.deliveries_of(SCHOOL_PHONE, FORWARD) == 1


@pytest.mark.parametrize("outcome", ["429", "500", "503"])
def test_an_answer_from_twilio_is_retried_without_a_look_up(scenario, app, sim, twilio, outcome):
    sim.script(outcome)
    sim.send_from_handset(MARY, TRIP_NUMBER, "Is the coach late?")
    sender = OutboxSender(app, gateway=twilio)
    sender.run_once()
    assert scenario.outbound(kind=Kind.FORWARD)[0].unknown_outcome_at is None

    due_now(app)
    sender.run_once()

    assert twilio.lookups == 0
    assert [call.http_status for call in sim.create_calls()] == [int(outcome), 201]
    assert scenario.outbound(kind=Kind.FORWARD)[0].twilio_sid == created_sids(sim)[0]


def test_a_failed_look_up_backs_off_and_sends_nothing(scenario, app, sim, twilio):
    sim.script("timeout-accepted")
    sim.send_from_handset(MARY, TRIP_NUMBER, "Is the coach late?")
    sender = OutboxSender(app, gateway=twilio)
    sender.run_once()
    sim.wait_idle()
    first = scenario.outbound(kind=Kind.FORWARD)[0]

    sim.set_latency(1.5)  # the look-up times out too
    due_now(app)
    before = utcnow()
    sender.run_once()

    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert (forward.status, forward.attempts, forward.twilio_sid) == (Status.PENDING, 2, None)
    assert forward.next_attempt_at > before
    assert forward.error_message.startswith("could not check whether Twilio already has it")
    assert forward.unknown_outcome_at == first.unknown_outcome_at  # still the first attempt
    assert len(sim.create_calls()) == 1  # nothing sent blind

    sim.set_latency(0)
    sim.wait_idle()
    due_now(app)
    sender.run_once()

    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert forward.twilio_sid == created_sids(sim)[0]
    assert twilio.lookups == 2
    assert len(sim.create_calls()) == 1
    sim.wait_idle()
    assert sim.deliveries_of(SCHOOL_PHONE, FORWARD) == 1


@pytest.mark.parametrize("outcome", ["timeout", "timeout-accepted"])
def test_the_same_text_sent_twice_on_purpose_is_not_taken_for_the_other(
    scenario, app, sim, twilio, outcome
):
    """Two broadcasts with the same words: each parent must get both. The second one's look-up
    sees the first one's texts (same number, recipient and body, a moment earlier), but those
    sids belong to the first broadcast's rows."""
    sender = OutboxSender(app, gateway=twilio)
    sim.send_from_handset(SCHOOL_PHONE, TRIP_NUMBER, "ALL Coach back at 4")
    assert sender.run_once() == 4  # three parents and the receipt
    sim.wait_idle()

    sim.script(*[outcome] * 4)
    sim.send_from_handset(SCHOOL_PHONE, TRIP_NUMBER, "ALL Coach back at 4")
    assert sender.run_once() == 4
    sim.wait_idle()
    with app.app_context():
        assert (
            db.session.scalar(
                select(db.func.count()).where(Message.unknown_outcome_at.is_not(None))
            )
            == 4
        )
    due_now(app)
    assert sender.run_once() == 4
    sim.wait_idle()

    rows = scenario.outbound(direction=Direction.OUT)
    assert len([row for row in rows if row.kind == Kind.BROADCAST]) == 6
    sids = [row.twilio_sid for row in rows]
    assert None not in sids, [(row.status, row.error_message) for row in rows]
    assert len(set(sids)) == len(sids) == 8
    assert sorted(sids) == sorted(created_sids(sim))
    assert twilio.lookups == 4
    for parent in PARENTS:
        assert sim.deliveries_of(parent, "Coach back at 4") == 2
    [receipt_body] = {row.body for row in scenario.outbound(kind=Kind.RECEIPT)}
    assert sim.deliveries_of(SCHOOL_PHONE, receipt_body) == 2
    assert len(created_sids(sim)) == 8


# --- With the FakeGateway --------------------------------------------------------------------


@pytest.fixture
def quick(app):
    app.config.update(SEND_BACKOFF_SECONDS=0.01, SEND_MAX_ATTEMPTS=4)


def test_look_ups_that_keep_failing_give_up_visibly_and_never_send(scenario, app, quick):
    scenario.text(MARY, "Is the coach late?")
    gateway = scenario.gateway
    gateway.script = [LostAnswer()]
    gateway.lookup_script = [
        GatewayError(ErrorKind.RETRYABLE, "look for a sent text: busy", http_status=503),
        GatewayError(ErrorKind.REJECTED, "look for a sent text: refused", code=20003),
        GatewayError(ErrorKind.RETRYABLE, "look for a sent text: no answer"),
    ]
    sender = OutboxSender(app, gateway=gateway)
    for _ in range(6):
        sender.run_once()
        due_now(app)

    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert forward.status == Status.FAILED
    assert forward.error_message == (
        "gave up after 4 attempts (Twilio may have it): could not check whether Twilio "
        "already has it: look for a sent text: no answer"
    )
    assert len(gateway.lookups) == 3
    assert len(gateway.sent) == 1  # the first, whose answer was lost; never again


def test_the_look_up_covers_every_uncertain_attempt_since_the_first(scenario, app, quick):
    scenario.text(MARY, "Is the coach late?")
    gateway = scenario.gateway
    gateway.script = [
        GatewayError(ErrorKind.RETRYABLE, "no answer", outcome_unknown=True),
        GatewayError(ErrorKind.RETRYABLE, "busy", http_status=429),
    ]
    sender = OutboxSender(app, gateway=gateway)
    sender.run_once()
    first = scenario.outbound(kind=Kind.FORWARD)[0].unknown_outcome_at
    for _ in range(2):
        due_now(app)
        sender.run_once()

    # The 429 after the timeout does not settle it: the first attempt may still show up.
    assert [lookup[3] for lookup in gateway.lookups] == [first - UNKNOWN_OUTCOME_SKEW] * 2
    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert (forward.status, forward.attempts, len(gateway.sent)) == (Status.QUEUED, 3, 1)


def test_a_sender_that_died_after_twilio_took_the_text_does_not_send_it_again(scenario, app):
    scenario.text(MARY, "Is the coach late?")
    gateway = scenario.gateway
    dead = OutboxSender(app, gateway=gateway)
    with app.app_context():
        [claimed] = dead.claim(10)
    gateway.send(claimed.to_number, claimed.from_number, claimed.body, None)  # ...then it dies
    with app.app_context():
        db.session.execute(update(Message).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()

    assert scenario.send_all() == 1

    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert forward.twilio_sid == f"SM{1:032x}"
    assert (forward.status, forward.attempts) == (Status.QUEUED, 2)
    assert [lookup[3] for lookup in gateway.lookups] == [claimed.started_at - UNKNOWN_OUTCOME_SKEW]
    assert len(gateway.sent) == 1


def test_a_sid_taken_by_another_row_makes_this_row_look_again(scenario, app):
    """Another sender's look-up took this send's text for its own row (both rows the same text
    to the same parent). This row does not fail on the unique sid: it looks again, finds the
    text held by the other row, and sends its own."""
    scenario.text(MARY, "Is the coach late?")
    [forward] = scenario.outbound(kind=Kind.FORWARD)
    with app.app_context():
        db.session.add(
            Message(
                direction=Direction.OUT,
                kind=Kind.FORWARD,
                from_number=forward.from_number,
                to_number=forward.to_number,
                body=forward.body,
                status=Status.QUEUED,
                twilio_sid=f"SM{1:032x}",  # the sid the gateway is about to give
            )
        )
        db.session.commit()

    OutboxSender(app, gateway=scenario.gateway).run_once()

    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert (forward.status, forward.twilio_sid) == (Status.PENDING, None)
    assert forward.unknown_outcome_at is not None
    assert forward.error_message == "Twilio's answer was claimed by another message"
    due_now(app)
    OutboxSender(app, gateway=scenario.gateway).run_once()
    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert (forward.status, forward.twilio_sid) == (Status.QUEUED, f"SM{2:032x}")
    assert len(scenario.gateway.lookups) == 1
    assert len(scenario.gateway.sent) == 2

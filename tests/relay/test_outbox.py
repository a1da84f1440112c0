import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.relay.scenario import SCHOOL_PHONE, ErrorKind, FakeGateway, GatewayError, e164
from tripcomms.extensions import db
from tripcomms.relay.gateway import SendResult
from tripcomms.relay.models import Kind, Message, OptOut, Status
from tripcomms.relay.outbox import OutboxSender
from tripcomms.types import utcnow

MARY = e164(1)


def retryable(code=None, status=429):
    return GatewayError(ErrorKind.RETRYABLE, "busy", code=code, http_status=status)


def due_now(app):
    with app.app_context():
        db.session.execute(update(Message).values(next_attempt_at=utcnow()))
        db.session.commit()


@pytest.fixture
def quick(app):
    app.config.update(SEND_BACKOFF_SECONDS=0.01, SEND_MAX_ATTEMPTS=4)


def test_sends_with_the_status_callback_and_stores_the_sid(scenario, app):
    scenario.text(SCHOOL_PHONE, "#1 hello")
    assert scenario.send_all() == 2  # the reply and the receipt
    _to, from_, body, callback = next(s for s in scenario.gateway.sent if s[0] == MARY)
    assert (from_, body) == ("+441234000001", "hello")
    assert callback == app.config["PUBLIC_BASE_URL"] + "/twilio/status"
    reply = scenario.outbound(kind=Kind.TO_CONTACT)[0]
    assert reply.status == Status.QUEUED and reply.twilio_sid.startswith("SM")
    assert reply.attempts == 1


def test_429_then_success(scenario, app, quick):
    scenario.text(MARY, "hello")
    scenario.gateway.script = [retryable()]
    sender = OutboxSender(app, gateway=scenario.gateway)
    assert sender.run_once() == 1
    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert forward.status == Status.PENDING and forward.next_attempt_at > forward.created_at
    due_now(app)
    sender.run_once()
    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert (forward.status, forward.attempts) == (Status.QUEUED, 2)


def test_500_three_times_then_success(scenario, app, quick):
    scenario.text(MARY, "hello")
    scenario.gateway.script = [retryable(status=500) for _ in range(3)]
    sender = OutboxSender(app, gateway=scenario.gateway)
    for _ in range(4):
        sender.run_once()
        due_now(app)
    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert (forward.status, forward.attempts) == (Status.QUEUED, 4)
    assert len(scenario.gateway.sent) == 1


def test_gives_up_after_the_maximum_attempts(scenario, app, quick):
    scenario.text(MARY, "hello")
    scenario.gateway.script = [retryable(status=503) for _ in range(10)]
    sender = OutboxSender(app, gateway=scenario.gateway)
    for _ in range(6):
        sender.run_once()
        due_now(app)
    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert forward.status == Status.FAILED
    assert forward.error_message.startswith("gave up after 4 attempts")


def test_backoff_grows_and_has_jitter(app):
    from tripcomms.relay.outbox import backoff

    app.config.update(SEND_BACKOFF_SECONDS=2, SEND_BACKOFF_MAX_SECONDS=300)
    waits = [backoff(app, n).total_seconds() for n in (1, 2, 3, 4, 12)]
    assert 1 <= waits[0] <= 2 and 2 <= waits[1] <= 4 and 4 <= waits[2] <= 8
    assert 150 <= waits[4] <= 300
    assert len({backoff(app, 3) for _ in range(20)}) > 1


def test_opted_out_recipient_fails_the_message_and_is_remembered(scenario, app):
    scenario.text(SCHOOL_PHONE, "#1 hello")
    scenario.gateway.script = [
        GatewayError(ErrorKind.OPTED_OUT, "stop", code=21610, http_status=400)
    ]
    sender = OutboxSender(app, gateway=scenario.gateway)
    sender.run_once(limit=1)
    reply = scenario.outbound(kind=Kind.TO_CONTACT)[0]
    assert (reply.status, reply.error_code) == (Status.FAILED, 21610)
    with app.app_context():
        assert db.session.scalar(select(OptOut.number)) == MARY
    scenario.text(SCHOOL_PHONE, "#1 again")
    assert "opted out" in scenario.to(SCHOOL_PHONE)[-1]


def test_other_client_errors_fail_with_their_code(scenario, app):
    scenario.text(SCHOOL_PHONE, "#1 hello")
    scenario.gateway.script = [
        GatewayError(ErrorKind.INVALID_NUMBER, "bad", code=21211, http_status=400)
    ]
    OutboxSender(app, gateway=scenario.gateway).run_once(limit=1)
    reply = scenario.outbound(kind=Kind.TO_CONTACT)[0]
    assert (reply.status, reply.error_code) == (Status.FAILED, 21211)


def test_a_sender_killed_after_claiming_is_recovered_after_the_lease(scenario, app):
    scenario.text(MARY, "hello")
    dead = OutboxSender(app, gateway=scenario.gateway)
    with app.app_context():
        claimed = dead.claim(10)  # ...and then the process dies
    assert len(claimed) == 1
    assert scenario.outbound(kind=Kind.FORWARD)[0].status == Status.SENDING
    assert scenario.send_all() == 0  # the lease still holds
    with app.app_context():
        db.session.execute(update(Message).values(lease_expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    assert scenario.send_all() == 1
    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert (forward.status, forward.attempts) == (Status.QUEUED, 2)
    assert len(scenario.gateway.sent) == 1


def test_unexpected_errors_put_the_message_back(scenario, app, quick):
    class Broken(FakeGateway):
        def send(self, *args):
            raise RuntimeError("library bug")

    scenario.text(MARY, "hello")
    OutboxSender(app, gateway=Broken()).run_once()
    assert scenario.outbound(kind=Kind.FORWARD)[0].status == Status.PENDING


def test_an_error_recording_one_result_leaves_the_rest_of_the_batch_recorded(scenario, app):
    """A database error while recording one send (here Twilio's sid is already stored) left
    the session unusable: putting that row back raised again, run_once failed, and the other
    texts of the batch, already accepted by Twilio, stayed 'sending' until their lease ran
    out and were then sent a second time."""
    taken = "SM" + "d" * 32
    scenario.text(SCHOOL_PHONE, "ALL hello", sid=taken)

    class ClashingSid(FakeGateway):
        def send(self, to, from_, body, status_callback):
            result = super().send(to, from_, body, status_callback)
            return SendResult(taken, result.status) if to == e164(3) else result

    gateway = ClashingSid()
    assert OutboxSender(app, gateway=gateway).run_once() == 4  # three parents and the receipt
    assert len(gateway.sent) == 4
    rows = {m.to_number: m for m in scenario.outbound()}
    for number in (e164(1), e164(2), SCHOOL_PHONE):
        assert rows[number].status == Status.QUEUED
        assert rows[number].twilio_sid.startswith("SM0")
    assert rows[e164(3)].status == Status.PENDING
    assert rows[e164(3)].error_message == "Twilio's answer was claimed by another message"


def test_two_senders_never_send_the_same_row(scenario, app):
    """Concurrent claims (SKIP LOCKED on PostgreSQL, one writer on SQLite)."""
    scenario.text(SCHOOL_PHONE, "ALL hello")
    with app.app_context():
        for i in range(60):
            scenario_text = Message(  # more pending rows, straight into the outbox
                direction="out",
                kind=Kind.HELP,
                from_number="+441234000001",
                to_number=e164(700 + i),
                body=f"n{i}",
                status=Status.PENDING,
                next_attempt_at=utcnow(),
            )
            db.session.add(scenario_text)
        db.session.commit()
    gateways = [FakeGateway(first_sid=1), FakeGateway(first_sid=1_000_000)]
    start = threading.Barrier(2)
    errors = []

    def run(gateway):
        try:
            start.wait()
            sender = OutboxSender(app, gateway=gateway)
            while sender.run_once(limit=7):
                pass
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run, args=(g,)) for g in gateways]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    sent = [s[2] + s[0] for g in gateways for s in g.sent]
    assert len(sent) == len(set(sent))
    assert {m.status for m in scenario.outbound()} == {Status.QUEUED}
    assert len(sent) == len(scenario.outbound())

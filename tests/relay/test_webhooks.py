import threading

import pytest
from sqlalchemy import event, func, select

from tests.helpers import TripcommsClient
from tests.live import serve
from tests.relay.scenario import SCHOOL_PHONE, TRIP_NUMBER, e164
from tripcomms.audit.models import AuditEvent
from tripcomms.extensions import db
from tripcomms.relay.models import DeliveryEvent, Kind, Message, Status
from tripcomms.relay.webhooks import MAX_INBOUND_BODY

MARY = e164(1)


def params(sid="SM" + "a" * 32, body="hello"):
    return {"MessageSid": sid, "From": MARY, "To": TRIP_NUMBER, "Body": body, "NumMedia": "0"}


def message_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Message))


@pytest.mark.parametrize("signature", [None, "", "bm90IGEgc2lnbmF0dXJl"])
def test_unsigned_or_badly_signed_webhooks_are_refused_and_audited(scenario, app, signature):
    headers = {} if signature is None else {"X-Twilio-Signature": signature}
    response = scenario.client.post("/twilio/sms", data=params(), headers=headers)
    assert response.status_code == 403
    assert message_count(app) == 0
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()))
        assert event.action == "webhook.bad_signature"
        assert MARY not in str(event.data)


def test_signed_with_the_wrong_token_is_refused(scenario, app):
    from twilio.request_validator import RequestValidator

    data = params()
    bad = RequestValidator("someone-elses-token").compute_signature(
        app.config["PUBLIC_BASE_URL"] + "/twilio/sms", data
    )
    assert scenario.post("/twilio/sms", data, signature=bad).status_code == 403
    assert message_count(app) == 0


def test_signature_is_checked_against_the_public_url_not_the_local_one(scenario, app):
    app.config["PUBLIC_BASE_URL"] = "https://trips.school.example"
    data = params()
    response = scenario.client.post(
        "/twilio/sms", data=data, headers={"X-Twilio-Signature": scenario.sign("/twilio/sms", data)}
    )
    assert response.status_code == 200


def test_status_callback_must_be_signed(scenario):
    response = scenario.client.post(
        "/twilio/status", data={"MessageSid": "SMx", "MessageStatus": "delivered"}
    )
    assert response.status_code == 403


def test_answer_is_empty_twiml(scenario):
    data = params()
    response = scenario.post("/twilio/sms", data)
    assert response.mimetype == "text/xml"
    assert response.get_data(as_text=True).endswith("<Response/>")


def test_the_same_message_sid_twice_is_relayed_once(scenario, app):
    scenario.text(MARY, "hello", sid="SM" + "b" * 32)
    scenario.text(MARY, "hello", sid="SM" + "b" * 32)
    assert len(scenario.inbound()) == 1
    assert len(scenario.outbound(kind=Kind.FORWARD)) == 1


def test_a_text_is_routed_before_anything_is_written(scenario, app):
    """Writes come last. On SQLite the first write takes the database's one write lock until
    the commit; routing while holding it made every other worker's webhook wait."""
    with app.app_context():
        engine = db.engine

    def statements_of(sender: str, body: str) -> list[str]:
        words: list[str] = []

        def remember(conn, cursor, statement, *args):
            words.append(statement.split(None, 1)[0].upper())

        event.listen(engine, "before_cursor_execute", remember)
        try:
            scenario.text(sender, body)
        finally:
            event.remove(engine, "before_cursor_execute", remember)
        return words

    for sender, body in ((MARY, "Are we on time?"), (SCHOOL_PHONE, "#1 Yes, back at 15:30")):
        words = statements_of(sender, body)
        first_write = next(i for i, w in enumerate(words) if w in ("INSERT", "UPDATE", "DELETE"))
        assert "SELECT" not in words[first_write:], (body, words)
    assert len(scenario.outbound(kind=Kind.FORWARD)) == 1
    assert len(scenario.outbound(kind=Kind.TO_CONTACT)) == 1


def test_five_simultaneous_posts_of_one_sid_relay_once(scenario, app):
    data = params(sid="SM" + "c" * 32)
    signature = scenario.sign("/twilio/sms", data)
    with serve(app) as url:
        app.config["PUBLIC_BASE_URL"] = url
        signature = scenario.sign("/twilio/sms", data)
        import requests

        start = threading.Barrier(5)
        codes = []

        def post():
            start.wait()
            response = requests.post(
                url + "/twilio/sms",
                data=data,
                headers={"X-Twilio-Signature": signature},
                timeout=30,
            )
            codes.append(response.status_code)

        threads = [threading.Thread(target=post) for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert codes == [200] * 5
    assert len(scenario.inbound()) == 1
    assert len(scenario.outbound(kind=Kind.FORWARD)) == 1


def test_status_callbacks_duplicated_and_out_of_order_never_step_back(scenario):
    scenario.text(MARY, "hello")
    scenario.send_all()
    sid = scenario.outbound(kind=Kind.FORWARD)[0].twilio_sid
    for state in ("sent", "delivered", "sent", "queued", "delivered", "failed"):
        assert scenario.status(sid, state).status_code == 204
    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert forward.status == Status.DELIVERED


def test_a_callback_before_the_sid_is_recorded_is_applied_later(scenario, app):
    scenario.text(MARY, "hello")
    # Twilio answers and calls back before our outbox has committed the sid.
    early_sid = "SM" + "0" * 31 + "1"  # the fake gateway's first sid
    scenario.status(early_sid, "delivered")
    with app.app_context():
        event = db.session.scalar(select(DeliveryEvent))
        assert (event.message_id, event.applied) == (None, False)
    scenario.send_all()
    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert forward.twilio_sid == early_sid
    assert forward.status == Status.DELIVERED


def test_failed_callback_keeps_its_error_code(scenario):
    scenario.text(SCHOOL_PHONE, "#1 hello")
    scenario.send_all()
    reply = scenario.outbound(kind=Kind.TO_CONTACT)[0]
    scenario.status(reply.twilio_sid, "undelivered", 30003)
    reply = scenario.outbound(kind=Kind.TO_CONTACT)[0]
    assert (reply.status, reply.error_code) == (Status.UNDELIVERED, 30003)


@pytest.mark.parametrize(
    "written", ["18401708077435846655", "2147483648", "-30003", "1e5", "\u0663", "abc", "9" * 5000]
)
def test_a_callback_whose_error_code_is_not_a_plain_code_is_kept_without_it(scenario, app, written):
    """An ErrorCode beyond a 32-bit integer failed the insert (500 on both databases) and the
    callback was lost; now it is kept, and applied, without the code. Negative codes and
    digits of other scripts are not codes either."""
    scenario.text(SCHOOL_PHONE, "#1 hello")
    scenario.send_all()
    reply = scenario.outbound(kind=Kind.TO_CONTACT)[0]
    response = scenario.post(
        "/twilio/status",
        {"MessageSid": reply.twilio_sid, "MessageStatus": "undelivered", "ErrorCode": written},
    )
    assert response.status_code == 204
    reply = scenario.outbound(kind=Kind.TO_CONTACT)[0]
    assert (reply.status, reply.error_code) == (Status.UNDELIVERED, None)
    with app.app_context():
        event = db.session.scalar(select(DeliveryEvent))
        assert (event.status, event.error_code, event.applied) == ("undelivered", None, True)


def test_the_largest_error_code_that_fits_is_kept(scenario):
    scenario.text(SCHOOL_PHONE, "#1 hello")
    scenario.send_all()
    reply = scenario.outbound(kind=Kind.TO_CONTACT)[0]
    scenario.status(reply.twilio_sid, "failed", 2**31 - 1)
    assert scenario.outbound(kind=Kind.TO_CONTACT)[0].error_code == 2**31 - 1


@pytest.mark.parametrize(
    "data",
    [
        {"From": MARY, "To": TRIP_NUMBER, "Body": "no sid"},
        {"MessageSid": "SM" + "x" * 100, "From": MARY, "To": TRIP_NUMBER},
    ],
)
def test_malformed_webhooks_get_400_and_store_nothing(scenario, app, data):
    assert scenario.post("/twilio/sms", data).status_code == 400
    assert message_count(app) == 0


def test_odd_fields_are_stored_not_refused(scenario, app):
    data = {
        "MessageSid": "SM" + "d" * 32,
        "From": MARY,
        "To": TRIP_NUMBER,
        "Body": "nul\x00byte",
        "NumMedia": "lots",
    }
    assert scenario.post("/twilio/sms", data).status_code == 200
    assert scenario.inbound()[0].body == "nul\ufffdbyte"


def test_a_long_text_from_a_parent_is_stored_whole(scenario):
    """Bodies were cut to 20,000 characters before they were stored: the rest of what the
    parent sent was lost, and the "too long" reply gave the wrong length."""
    body = "".join(f"word{i} " for i in range(5000))  # 48,890 characters
    scenario.text(MARY, body)
    (stored,) = scenario.inbound()
    assert stored.body == body
    assert (stored.needs_review, stored.note) == (True, "too long to relay")
    (reply,) = scenario.outbound(kind=Kind.KEYWORD_REPLY)
    assert f"({len(body):,} characters;" in reply.body


def test_a_body_of_100000_characters_all_different_words_is_stored_whole(scenario):
    """The longest body kept whole, in the words that make PostgreSQL's full-text index of it
    biggest: 50,000 one-letter words, every one different."""
    letters = [chr(c) for c in [*range(0x4E00, 0xA000), *range(0xAC00, 0xD7A4)]]
    letters += [chr(c) for c in range(0x20000, 0x20000 + 50_000 - len(letters))]
    body = " ".join(letters) + " "
    assert len(body) == MAX_INBOUND_BODY
    scenario.text(MARY, body)
    (stored,) = scenario.inbound()
    assert stored.body == body
    assert "characters kept" not in stored.note


def test_a_body_beyond_the_limit_keeps_its_first_part_and_says_so(scenario):
    body = "x" * (MAX_INBOUND_BODY + 12_345)
    scenario.text(e164(777), body)  # a stranger: not relayed, waits for the office anyway
    (stored,) = scenario.inbound()
    assert stored.body == body[:MAX_INBOUND_BODY]
    assert stored.needs_review
    assert stored.note == (
        "unknown number; not relayed; only the first 100,000 of 112,345 characters kept"
    )


def test_webhooks_need_no_csrf_token_or_login(app, scenario):
    client = app.test_client()
    assert isinstance(client, TripcommsClient)
    data = params(sid="SM" + "e" * 32)
    response = client.post(
        "/twilio/sms", data=data, headers={"X-Twilio-Signature": scenario.sign("/twilio/sms", data)}
    )
    assert response.status_code == 200


# Columns that differ between any two texts whatever wrote them.
_ALWAYS_DIFFERENT = {
    "id",
    "twilio_sid",
    "body_salt",
    "created_at",
    "next_attempt_at",
    "caused_by_id",
}


def _rows_of(app, inbound_sid):
    with app.app_context():
        inbound = db.session.scalar(select(Message).where(Message.twilio_sid == inbound_sid))
        caused = db.session.scalars(
            select(Message).where(Message.caused_by_id == inbound.id).order_by(Message.id)
        ).all()
        columns = [c.key for c in Message.__table__.columns if c.key not in _ALWAYS_DIFFERENT]
        return [{key: getattr(m, key) for key in columns} for m in (inbound, *caused)]


def test_a_text_written_without_the_unit_of_work_is_what_a_flush_writes(scenario, app, monkeypatch):
    """A parent's text and its forwards go in with plain INSERTs (the hot path); the rows must
    be exactly those the ORM's flush writes, defaults and foreign keys included."""
    from tripcomms.relay import operations as ops

    scenario.text(MARY, "Is the coach on time?", sid="SM" + "1" * 32)
    fast = _rows_of(app, "SM" + "1" * 32)

    def flush_only(inbound, caused):
        db.session.flush()

    monkeypatch.setattr(ops, "_write", flush_only)
    scenario.text(MARY, "Is the coach on time?", sid="SM" + "2" * 32)
    flushed = _rows_of(app, "SM" + "2" * 32)

    assert len(fast) == 2 and fast[1]["kind"] == Kind.FORWARD
    assert fast[0]["trip_id"] is not None and fast[1]["contact_id"] is not None
    # The second forward leaves out the "Reply: #1" hint only if the phone used codes; it has
    # not, so the two texts' rows are alike column for column.
    assert fast == flushed


def test_a_text_that_changes_other_rows_is_written_by_a_flush(scenario, app):
    """STOP writes an opt-out beside the messages: the plain-INSERT path stands aside and the
    flush writes everything, in the same transaction."""
    scenario.text(MARY, "STOP", sid="SM" + "3" * 32)
    with app.app_context():
        from tripcomms.relay.models import OptOut

        assert db.session.scalar(select(func.count()).select_from(OptOut)) == 1
    rows = _rows_of(app, "SM" + "3" * 32)
    assert rows[0]["note"] == "STOP keyword"
    assert [r["kind"] for r in rows[1:]] == [Kind.FORWARD]


@pytest.fixture
def few_audited(app):
    app.config["BAD_SIGNATURE_AUDITS_PER_ADDRESS"] = "3 per hour"


def test_refusals_past_an_addresss_allowance_are_refused_but_not_audited(
    scenario, app, few_audited, caplog
):
    """Anyone can post to the webhook: bad signatures are all refused, but only the first few
    from one address go in the audit log, which must not grow at a stranger's pace."""
    with app.app_context():
        before = db.session.scalar(select(func.count()).select_from(AuditEvent))
    codes = [
        scenario.client.post("/twilio/sms", data=params(sid=f"SM{i:032d}")).status_code
        for i in range(8)
    ]
    assert codes == [403] * 8
    assert message_count(app) == 0
    with app.app_context():
        actions = db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.seq > before).order_by(AuditEvent.seq)
        ).all()
    assert actions == ["webhook.bad_signature"] * 3
    assert sum("not audited" in r.getMessage() for r in caplog.records) == 5


def test_a_status_callback_waits_for_one_being_applied_and_never_steps_back(scenario, app):
    """Twilio posts "sent" and "delivered" without waiting for our answers: a "sent" that
    arrives while "delivered" is being written must wait for it, then change nothing."""
    scenario.text(MARY, "hello")
    scenario.send_all()
    table = Message.__table__
    with app.app_context():
        forward = db.session.scalar(select(Message).where(Message.kind == Kind.FORWARD))
        forward.status = Status.QUEUED  # as Twilio's answer to the create left it
        db.session.commit()
        sid, message_id = forward.twilio_sid, forward.id
        engine = db.engine
    answers = []
    with engine.connect() as other:
        # Another callback's transaction: "delivered" written, not yet committed.
        other.execute(table.update().where(table.c.id == message_id).values(status="delivered"))
        late = threading.Thread(target=lambda: answers.append(scenario.status(sid, "sent")))
        late.start()
        late.join(0.7)
        assert late.is_alive(), "the second callback did not wait for the first"
        other.commit()
        late.join(20)
    assert [a.status_code for a in answers] == [204]
    with app.app_context():
        assert db.session.get(Message, message_id).status == Status.DELIVERED

"""Twilio's webhooks under generated, validly signed requests.

Whatever the parameters (missing, extra, empty, huge, odd unicode, bytes that are not UTF-8,
numbers written oddly, many media entries, any status in any order) the webhooks never answer
500; a text answered 200 is stored once with every character of its body; a repeated sid adds
nothing; and the audit chain still verifies.
"""

from __future__ import annotations

import urllib.parse

import werkzeug.urls  # noqa: F401  (registers the "werkzeug.url_quote" codec error handler)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from tests.fuzz.support import examples
from tests.fuzz.values import huge, numbers_oddly, odd_text, value
from tests.relay.scenario import SCHOOL_PHONE, TRIP_NUMBER, e164
from tests.trips.rosters import HEADER, mobile
from tripcomms.audit.operations import verify_chain
from tripcomms.extensions import db
from tripcomms.relay.models import DeliveryEvent, Direction, Message, Status

NOTIFY_FROM = "+441234000050"
HEAD_PHONE = e164(950)
PARENTS = [e164(1), e164(2), e164(3)]
SETTINGS = settings(
    max_examples=examples(50),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# --- Values ----------------------------------------------------------------------------------

sid_value = st.one_of(
    st.builds(lambda n: f"SMfeed{n:028x}", st.integers(0, 40)),  # repeats come often
    st.builds(lambda s: "SM" + s, st.text(min_size=0, max_size=70)),
    st.sampled_from(["", " ", "\x00", "SM" + "a" * 62, "SM" + "a" * 63]),
)
known_sender = st.one_of(
    st.sampled_from([*PARENTS, "07400 000001", "0044 7400 000003"]),  # parents, however written
    st.just(SCHOOL_PHONE),  # a staff phone on the trip: its texts are commands
    st.sampled_from(
        [
            e164(900),  # the leader's personal number, with no approval
            HEAD_PHONE,
            e164(4),  # a parent marked no contact
            e164(40),  # a pupil's own phone
            e164(777),  # unknown
            "+1 415 555 0100",
            "whatsapp:+447400000001",
        ]
    ),
)
sender = st.one_of(known_sender, st.just(""), value)
receiver = st.one_of(
    st.sampled_from([TRIP_NUMBER, TRIP_NUMBER, NOTIFY_FROM, "+441234000099", "01234 000001", ""]),
    value,
)
command = st.builds(
    "{}{}".format,
    st.sampled_from(
        [
            "#1 ",
            "#2: ",
            "# 3 ",
            "#4 ",  # no contact
            "#99 ",
            "#999999 ",
            "#0 ",
            "#٣ ",
            "ALL ",
            "all: ",
            "APPROVE 1 ",
            "DENY 2147483648 ",
            "approve 999999999 ",
        ]
    ),
    st.one_of(odd_text, st.just("running late"), huge(1, 1500), huge(1550, 1700)),
)
body = st.one_of(
    st.sampled_from(["STOP", "start", " HELP ", "LIST", "ALL", "#", "#1", "APPROVE 1", "DENY 99"]),
    command,
    command,
    odd_text,
    value,
    huge(),
)


@st.composite
def sms_request(draw):
    """Parameters of an inbound-text webhook as (name, value) pairs, values str or bytes.

    Three in four look like Twilio's (a sid, a known sender, the trip's number) with a generated
    body and media, so that they go down the relay's real routes; the rest are wild.
    """
    pairs: list[tuple[str, str | bytes]] = []
    if draw(st.integers(0, 3)) < 3:
        who = draw(known_sender)
        to = draw(st.sampled_from([TRIP_NUMBER, TRIP_NUMBER, TRIP_NUMBER, NOTIFY_FROM]))
        # The staff phone mostly sends commands, so that many reach parents.
        text = draw(command if who == SCHOOL_PHONE and draw(st.booleans()) else body)
        pairs += [
            ("MessageSid", draw(st.builds("SMfeed{:028x}".format, st.integers(0, 2**64)))),
            ("AccountSid", "AC" + "1" * 32),
            ("From", who),
            ("To", to),
            ("Body", text),
        ]
    else:
        fields = {
            "MessageSid": sid_value,
            "AccountSid": st.just("AC" + "1" * 32),
            "From": sender,
            "To": receiver,
            "Body": body,
            "NumSegments": numbers_oddly,
        }
        for name, strategy in fields.items():
            if draw(st.booleans()) or draw(st.booleans()):  # usually present
                pairs.append((name, draw(strategy)))
    media = draw(st.integers(0, 20)) if draw(st.booleans()) else 0
    if media or draw(st.booleans()):
        pairs.append(("NumMedia", str(media) if draw(st.booleans()) else draw(numbers_oddly)))
    for i in range(draw(st.integers(0, 22)) if draw(st.booleans()) else media):
        pairs.append((f"MediaUrl{i}", f"https://api.twilio.com/2010-04-01/Media/ME{i}"))
        if draw(st.booleans()) or draw(st.booleans()):
            content_type = st.one_of(
                st.sampled_from(["image/jpeg", "video/mp4", "text/vcard"]), value
            )
            pairs.append((f"MediaContentType{i}", draw(content_type)))
    for _ in range(draw(st.integers(0, 3))):  # extra fields, and sometimes a field twice
        name = draw(st.one_of(st.sampled_from(["Body", "From", "FromCity", "SmsStatus"]), odd_text))
        pairs.append((name, draw(value)))
    return draw(st.permutations(pairs))


STATES = [
    "queued",
    "sending",
    "sent",
    "delivered",
    "undelivered",
    "failed",
    "accepted",
    "read",
    "canceled",
    "receiving",
    "received",
    "scheduled",
    "DELIVERED",
    " sent ",
    "Delivered\x00",
]


@st.composite
def status_request(draw, known_sids):
    pairs: list[tuple[str, str | bytes]] = []
    if draw(st.integers(0, 9)):
        sid = draw(st.one_of(st.sampled_from(known_sids), sid_value) if known_sids else sid_value)
        pairs.append(("MessageSid", sid))
    if draw(st.integers(0, 9)):
        pairs.append(("MessageStatus", draw(st.one_of(st.sampled_from(STATES), value))))
    if draw(st.booleans()):
        pairs.append(("ErrorCode", draw(numbers_oddly)))
    if draw(st.booleans()):
        pairs.append(("SmsStatus", draw(value)))
    for _ in range(draw(st.integers(0, 2))):
        pairs.append((draw(odd_text), draw(value)))
    return draw(st.permutations(pairs))


# --- The wire --------------------------------------------------------------------------------


def encode(pairs) -> bytes:
    return "&".join(
        urllib.parse.quote_plus(name) + "=" + urllib.parse.quote_plus(v) for name, v in pairs
    ).encode("ascii")


def as_received(raw: bytes) -> MultiDict:
    """The form as the app reads it (Werkzeug's parser, invalid UTF-8 kept as %XX)."""
    return MultiDict(
        urllib.parse.parse_qsl(raw.decode(), keep_blank_values=True, errors="werkzeug.url_quote")
    )


def post(scenario, path: str, pairs):
    raw = encode(pairs)
    form = as_received(raw)
    headers = {"X-Twilio-Signature": scenario.sign(path, form)}
    response = scenario.client.post(
        path, data=raw, content_type="application/x-www-form-urlencoded", headers=headers
    )
    return response, form


def clean(text: str | None) -> str:
    return (text or "").replace("\x00", "\ufffd")


def counts(app) -> tuple[int, int]:
    with app.app_context():
        return (
            db.session.scalar(select(func.count()).select_from(Message)),
            db.session.scalar(select(func.count()).select_from(DeliveryEvent)),
        )


# --- The tests -------------------------------------------------------------------------------


def setup(fresh_scenario, app):
    """The relay scenario's trip with a roster that has a parent marked no contact and a pupil
    with her own phone, a Headteacher with a phone, and a notification number, so that
    generated texts reach every route."""
    scenario = fresh_scenario()
    app.config["NOTIFY_FROM"] = NOTIFY_FROM
    scenario.factory.user("head", personal_numbers=(mobile(950),))
    scenario.import_roster(
        [
            f"Sam,Jones,Year 6,Mary Jones,mother,{mobile(1)},no,no,",
            f"Sam,Jones,Year 6,Tom Jones,father,{mobile(2)},no,no,",
            f"Ella,Smith,Year 5,Ann Smith,carer,{mobile(3)},yes,no,{mobile(40)}",
            f"Ella,Smith,Year 5,Bob Smith,father,{mobile(4)},yes,yes,{mobile(40)}",
        ],
        header=f"{HEADER},image_restricted,no_contact,pupil_mobile",
    )
    return scenario


def test_inbound_webhook_under_generated_requests(fresh_scenario, app):
    @SETTINGS
    @given(st.lists(st.tuples(sms_request(), st.booleans()), min_size=1, max_size=6))
    def run(requests):
        scenario = setup(fresh_scenario, app)
        first_body: dict[str, str] = {}  # sid -> the body stored with it
        for pairs, repeat in requests:
            for attempt in range(2 if repeat else 1):
                before = counts(app)
                response, form = post(scenario, "/twilio/sms", pairs)
                assert response.status_code != 500, pairs
                sid = clean(form.get("MessageSid"))
                if not sid or len(sid) > 64:
                    assert response.status_code == 400
                    assert counts(app) == before
                    continue
                assert response.status_code == 200, response.get_data(as_text=True)
                if sid in first_body:  # a repeat, or a sid used before: nothing new
                    assert counts(app) == before, (attempt, sid)
                    continue
                first_body[sid] = clean(form.get("Body"))
                with app.app_context():
                    stored = db.session.scalars(
                        select(Message).where(Message.twilio_sid == sid)
                    ).all()
                    assert len(stored) == 1
                    assert stored[0].direction == Direction.IN
                    assert stored[0].body == first_body[sid]
        scenario.send_all()  # what the texts caused goes out without error
        with app.app_context():
            stored = dict(
                db.session.execute(
                    select(Message.twilio_sid, Message.body).where(
                        Message.direction == Direction.IN
                    )
                ).all()
            )
            assert stored == first_body
            result = verify_chain()
            assert result.ok, result.reason

    run()


def test_status_webhook_under_generated_requests(fresh_scenario, app):
    final = {Status.DELIVERED, Status.UNDELIVERED, Status.FAILED}

    def statuses(known) -> dict[str, str]:
        with app.app_context():
            return dict(
                db.session.execute(
                    select(Message.twilio_sid, Message.status).where(Message.twilio_sid.in_(known))
                ).all()
            )

    @SETTINGS
    @given(st.data())
    def run(data):
        scenario = fresh_scenario()
        for n, parent in enumerate(PARENTS):
            scenario.text(parent, f"Question {n}")
        scenario.send_all()
        with app.app_context():
            known = sorted(
                db.session.scalars(
                    select(Message.twilio_sid).where(
                        Message.direction == Direction.OUT, Message.twilio_sid.is_not(None)
                    )
                )
            )
        assert known
        for pairs in data.draw(st.lists(status_request(known), min_size=1, max_size=8)):
            before, events_before = statuses(known), counts(app)[1]
            response, form = post(scenario, "/twilio/status", pairs)
            assert response.status_code != 500, pairs
            sid = clean(form.get("MessageSid"))
            state = clean(form.get("MessageStatus"))[:16].lower()
            if not sid or len(sid) > 64 or not state:
                assert response.status_code == 400
                assert counts(app)[1] == events_before
                continue
            assert response.status_code == 204
            assert counts(app)[1] == events_before + 1  # every callback is kept
            after = statuses(known)
            for message_sid, status in before.items():
                if status in final:  # never steps back from a final status
                    assert after[message_sid] == status
        with app.app_context():
            result = verify_chain()
            assert result.ok, result.reason

    run()

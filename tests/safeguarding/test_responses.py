"""Response times (policy 22h): parents' texts left unanswered are flagged, and escalated once."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.record import ANN, MARY, SCHOOL_PHONE, TOM
from tests.relay.scenario import e164
from tripcomms.audit.models import AuditEvent
from tripcomms.audit.operations import CLI
from tripcomms.audit.report import trip_messages
from tripcomms.extensions import db
from tripcomms.relay.inbox import iso
from tripcomms.relay.models import Direction, Kind, Message, Status
from tripcomms.safeguarding import operations as ops
from tripcomms.safeguarding.models import ResponseEscalation
from tripcomms.safeguarding.responses import describe_wait, reply_times, waiting_texts
from tripcomms.trips.models import Trip, TripContact
from tripcomms.types import utcnow

NOTIFY = "+441234000500"
OFFICE = "+441234567890"  # OFFICE_PHONE in the test configuration


@pytest.fixture
def app_config(app_config):
    return {**app_config, "NOTIFY_FROM": NOTIFY}


def waiting(app, **kw):
    with app.app_context():
        found = [(w.message.contact.name, w.minutes, w.count) for w in waiting_texts(**kw)]
        db.session.expunge_all()
        return found


def test_a_text_unanswered_past_the_target_is_flagged_until_staff_reply(rec, app):
    rec.s.text(MARY, "Has the coach left?")
    assert waiting(app) == []
    rec.age(timedelta(minutes=31))
    assert waiting(app) == [("Mary Jones", 31, 1)]
    rec.s.text(SCHOOL_PHONE, "ALL Running 10 minutes late")  # a broadcast answers no one
    rec.s.text(SCHOOL_PHONE, "#1 ring me on 07400 999999")  # blocked: never reached her
    assert waiting(app) == [("Mary Jones", 31, 1)]
    rec.s.text(SCHOOL_PHONE, "#1 Yes, at 9")
    assert waiting(app) == []


def test_one_flag_per_parent_from_their_first_unanswered_text(rec, app):
    rec.s.text(MARY, "Hello?")
    rec.age(timedelta(minutes=20))
    rec.s.text(MARY, "Anyone there?")
    rec.s.text(TOM, "STOP")  # a keyword is not a question for staff
    rec.age(timedelta(minutes=15))
    assert waiting(app) == [("Mary Jones", 35, 2)]
    assert waiting(app, older_than=timedelta(minutes=40)) == []


def test_only_trips_in_their_window_are_flagged(rec, app):
    rec.s.text(ANN, "Hello?")
    rec.age(timedelta(minutes=45))
    assert waiting(app, trip_ids=[rec.s.trip_id]) != []
    assert waiting(app, trip_ids=[rec.other_trip_id]) == []
    with app.app_context():
        trip = db.session.get(Trip, rec.s.trip_id)
        trip.starts_at -= timedelta(days=3)
        trip.ends_at = utcnow() - timedelta(days=2)
        db.session.commit()
    assert waiting(app) == []


def test_the_trip_page_the_leaders_home_and_the_office_home_show_them(rec, app):
    rec.s.text(MARY, "Has the coach left?")
    rec.age(timedelta(minutes=40))
    leader = rec.login(rec.s.leader)
    trip_page = leader.get(f"/trips/{rec.s.trip_id}").get_data(as_text=True)
    assert "Replies to parents" in trip_page and "40 min</strong>: Mary Jones" in trip_page
    assert f"/log/trips/{rec.s.trip_id}/report" in trip_page
    assert "Parents waiting for your reply" in leader.get("/").get_data(as_text=True)
    assert "Parents waiting for your reply" not in rec.login(rec.other_leader).get("/").get_data(
        as_text=True
    )
    office = rec.login(rec.office)
    assert "waiting too long" not in office.get("/").get_data(as_text=True)
    rec.age(timedelta(minutes=21))
    home = office.get("/").get_data(as_text=True)
    assert "Parents waiting too long for a reply (over 60 minutes)" in home
    assert "61 min</strong>: Mary Jones on Science Museum" in home


def test_escalation_texts_the_office_once(rec, app, runner):
    rec.s.text(MARY, "Has the coach left?")
    rec.age(timedelta(minutes=59))
    result = runner.invoke(args=["safeguarding", "escalate"])
    assert result.output.strip() == "0 texts escalated; 0 texts to the office queued"
    rec.age(timedelta(minutes=2))
    result = runner.invoke(args=["safeguarding", "escalate"])
    assert result.exit_code == 0
    assert result.output.strip() == "1 texts escalated; 1 texts to the office queued"
    again = runner.invoke(args=["safeguarding", "escalate"])
    assert again.output.strip() == "0 texts escalated; 0 texts to the office queued"
    with app.app_context():
        [notice] = db.session.scalars(select(Message).where(Message.kind == Kind.NOTIFY)).all()
        assert (notice.from_number, notice.to_number, notice.status) == (
            NOTIFY,
            OFFICE,
            Status.PENDING,
        )
        assert "parent #1 on Science Museum has waited 61 minutes" in notice.body
        assert "Has the coach" not in notice.body
        escalation = db.session.scalar(select(ResponseEscalation))
        assert escalation.notice_id == notice.id
        event = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "response.escalated")
        )
        assert event.data["waited_minutes"] == 61 and event.actor == "cli"


def test_escalation_without_texting_when_switched_off(rec, app):
    app.config["ESCALATE_BY_SMS"] = False
    rec.s.text(MARY, "Has the coach left?")
    rec.age(timedelta(minutes=70))
    with app.app_context():
        result = ops.escalate_late_replies(CLI)
        db.session.commit()
        assert (len(result.escalated), result.texted) == (1, 0)
        assert result.escalated[0].notice_id is None


def test_two_processes_escalating_at_once_escalate_once(rec, app):
    rec.s.text(MARY, "Has the coach left?")
    rec.s.text(ANN, "And ours?")
    rec.age(timedelta(minutes=90))
    start = threading.Barrier(3)
    errors: list[BaseException] = []

    def run():
        try:
            with app.app_context():
                start.wait()
                ops.escalate_late_replies(CLI)
                db.session.commit()
        except BaseException as err:  # surfaced below
            errors.append(err)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ResponseEscalation)) == 2
        notices = db.session.scalar(
            select(func.count()).select_from(Message).where(Message.kind == Kind.NOTIFY)
        )
        assert notices == 2


def test_the_inbox_and_the_late_reply_flags_agree_on_who_is_waiting(rec, app):
    """One definition of a parent's text still waiting for a reply, in every place: the
    inbox's badges, the late-reply flags and the trip report's count of unanswered waits."""
    parents = {n: e164(n) for n in range(4, 9)}
    rec.s.import_roster(
        [
            f"Sam,Jones,Year 6,Mary Jones,mother,{MARY},no",
            f"Sam,Jones,Year 6,Tom Jones,father,{TOM},yes",
            f"Ella,Smith,Year 5,Ann Smith,carer,{ANN},no",
            *(
                f"Pupil{n},Family,Year 4,Parent {n},mother,{number},no"
                for n, number in parents.items()
            ),
        ],
        header="pupil_first_name,pupil_last_name,year_group,contact_name,relationship,mobile,"
        "no_contact",
    )
    rec.s.text(MARY, "Has the coach left?")
    rec.s.text(SCHOOL_PHONE, "#1 Yes, at 9")  # answered ...
    rec.s.text(MARY, "And when is it back?")  # ... and waiting again from here
    rec.s.text(TOM, "Let me talk to Sam")  # no contact: the office's, never staff's
    rec.s.text(ANN, "Is Ella OK?")
    rec.s.text(SCHOOL_PHONE, "ALL Running 10 minutes late")  # a broadcast answers no one
    rec.s.text(SCHOOL_PHONE, "#3 ring me on 07400 999999")  # blocked: never reached her
    rec.s.text(parents[4], "STOP")
    rec.s.text(parents[5], "HELP")
    rec.s.text(parents[6], "x" * 1601)  # too long: asked to send it again in parts
    rec.s.take_phone(SCHOOL_PHONE)
    rec.s.text(parents[7], "Anyone there?")  # no staff phone: still waits for the web inbox
    rec.s.give_phone(SCHOOL_PHONE, rec.s.leader, "Trip phone 1")
    rec.s.text(parents[8], "Thanks for today")
    with app.app_context():
        code = db.session.scalar(
            select(TripContact.code)
            .join(Message, Message.contact_id == TripContact.contact_id)
            .where(TripContact.trip_id == rec.s.trip_id, Message.from_number == parents[8])
        )
    rec.s.text(SCHOOL_PHONE, f"#{code} You are welcome")

    inbound = {(m.from_number, m.body): m for m in rec.s.inbound()}
    expected = {
        "Mary Jones": iso(inbound[(MARY, "And when is it back?")].created_at),
        "Ann Smith": iso(inbound[(ANN, "Is Ella OK?")].created_at),
        "Parent 7": iso(inbound[(parents[7], "Anyone there?")].created_at),
    }
    leader = rec.login(rec.s.leader)
    threads = leader.get(f"/trips/{rec.s.trip_id}/inbox.json").get_json()["threads"]
    in_inbox = {t["name"]: t["waiting_since"] for t in threads if t["waiting_since"]}
    with app.app_context():
        flagged = {
            w.message.contact.name: iso(w.message.created_at)
            for w in waiting_texts(trip_ids=[rec.s.trip_id], older_than=timedelta(0))
        }
        unanswered = reply_times(trip_messages(db.session.get(Trip, rec.s.trip_id))).unanswered
    assert in_inbox == flagged == expected
    assert unanswered == len(expected)


def test_a_failed_reply_answers_nothing_until_it_is_sent_again(rec, app):
    """A reply that failed never reached the parent: they wait on from their text, in the
    inbox, the late-reply flags and the trip report, until the reply is sent again."""
    rec.s.text(MARY, "Has the coach left?")
    rec.s.text(SCHOOL_PHONE, "#1 Yes, at 9")
    rec.age(timedelta(minutes=40))
    assert waiting(app) == []
    rec.s.send_all()
    (reply,) = rec.s.outbound(kind=Kind.TO_CONTACT)
    rec.s.status(reply.twilio_sid, "undelivered", 30003)
    assert waiting(app) == [("Mary Jones", 40, 1)]
    asked = rec.s.inbound()[0]
    leader = rec.login(rec.s.leader)
    (thread,) = leader.get(f"/trips/{rec.s.trip_id}/inbox.json").get_json()["threads"]
    assert thread["waiting_since"] == iso(asked.created_at)

    rec.s.send_again(reply.id)
    assert waiting(app) == []
    (thread,) = leader.get(f"/trips/{rec.s.trip_id}/inbox.json").get_json()["threads"]
    assert thread["waiting_since"] is None
    with app.app_context():
        times = reply_times(trip_messages(db.session.get(Trip, rec.s.trip_id)))
    assert times.unanswered == 0 and times.waits[0] >= timedelta(minutes=40)


def at(minute: int) -> datetime:
    return datetime(2026, 3, 14, 9, 0, tzinfo=UTC) + timedelta(minutes=minute)


def text(minute, contact, direction, kind, status=Status.RECEIVED, note="") -> Message:
    return Message(
        created_at=at(minute),
        contact_id=contact,
        direction=direction,
        kind=kind,
        status=status,
        note=note,
        needs_review=False,
    )


def test_median_time_to_the_first_reply():
    messages = [
        text(0, 1, Direction.IN, Kind.FROM_CONTACT),
        text(2, 1, Direction.IN, Kind.FROM_CONTACT),  # still the same wait
        text(5, 2, Direction.IN, Kind.FROM_CONTACT),
        text(8, 1, Direction.OUT, Kind.TO_CONTACT, Status.DELIVERED),  # 8 min
        text(9, 2, Direction.OUT, Kind.BROADCAST, Status.DELIVERED),  # not a reply
        text(10, 2, Direction.OUT, Kind.TO_CONTACT, Status.BLOCKED),  # not a reply
        text(25, 2, Direction.OUT, Kind.TO_CONTACT, Status.SENT),  # 20 min
        text(30, 3, Direction.IN, Kind.FROM_CONTACT, note="STOP keyword"),
        text(31, 3, Direction.IN, Kind.FROM_CONTACT),  # 4 min
        text(35, 3, Direction.OUT, Kind.TO_CONTACT, Status.DELIVERED),
        text(40, 1, Direction.IN, Kind.FROM_CONTACT),  # never answered
    ]
    times = reply_times(messages)
    assert sorted(w.total_seconds() / 60 for w in times.waits) == [4, 8, 20]
    assert times.median == timedelta(minutes=8) and times.unanswered == 1
    assert describe_wait(times.median) == "8 min"
    assert describe_wait(timedelta(minutes=75)) == "1 h 15 min"
    assert describe_wait(timedelta(seconds=40)) == "40 s"
    assert describe_wait(None) == "none"
    assert reply_times([]).median is None


def test_a_failed_reply_is_no_reply_and_one_on_its_way_is():
    messages = [
        text(0, 1, Direction.IN, Kind.FROM_CONTACT),
        text(3, 1, Direction.OUT, Kind.TO_CONTACT, Status.UNDELIVERED),  # never reached them
        text(4, 1, Direction.OUT, Kind.TO_CONTACT, Status.FAILED),
        text(12, 1, Direction.OUT, Kind.TO_CONTACT, Status.QUEUED),  # sent again: 12 min
        text(20, 2, Direction.IN, Kind.FROM_CONTACT),
        text(21, 2, Direction.OUT, Kind.TO_CONTACT, Status.FAILED),  # never answered
    ]
    times = reply_times(messages)
    assert [w.total_seconds() / 60 for w in times.waits] == [12]
    assert times.unanswered == 1

"""Retention: bodies and parents' numbers go RETENTION_DAYS after a trip's window closed;
messages a concern holds stay whole; the audit chain still verifies."""

from datetime import timedelta

from sqlalchemy import select

from tests.helpers import FACTORY
from tests.record import ANN, MARY, SCHOOL_PHONE, TOM
from tripcomms.audit import search
from tripcomms.audit.models import AuditEvent
from tripcomms.audit.operations import verify_chain
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.relay.models import Broadcast, Kind, Message
from tripcomms.safeguarding import operations as ops
from tripcomms.trips import operations as trip_ops
from tripcomms.trips.models import Contact, Trip
from tripcomms.types import utcnow

LONG_AGO = timedelta(days=500)


def trip_in_the_past(rec, delta=LONG_AGO):
    """Move the scenario's trip and all its messages ``delta`` into the past."""
    with rec.app.app_context():
        trip = db.session.get(Trip, rec.s.trip_id)
        trip.starts_at -= delta
        trip.ends_at -= delta
        db.session.commit()
    rec.age(delta)


def chat(rec):
    rec.s.text(MARY, "Has the coach left?")
    rec.s.text(TOM, "Lunch box forgotten")
    rec.s.text(SCHOOL_PHONE, "#1 Yes, at 9")
    rec.s.text(SCHOOL_PHONE, "ALL Back at 15:30")
    rec.s.text("+447400123123", "Who is this?")  # an unknown number


def by_body(rec, fragment):
    return next(m for m in rec.messages() if fragment in m.body)


def test_retention_redacts_bodies_and_parents_numbers(rec, runner):
    chat(rec)
    trip_in_the_past(rec)
    result = runner.invoke(args=["retention", "run"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("redacted ")
    messages = rec.messages()
    assert all(m.body == "" and m.body_redacted_at is not None for m in messages)
    inbound = [m for m in messages if m.kind == Kind.FROM_CONTACT]
    assert {m.from_number for m in inbound} == {"•••" + MARY[-3:], "•••" + TOM[-3:]}
    to_parents = [m for m in messages if m.kind in (Kind.TO_CONTACT, Kind.BROADCAST)]
    assert all(m.to_number.startswith("•••") for m in to_parents)
    stranger = next(m for m in messages if m.kind == Kind.FROM_UNKNOWN)
    assert stranger.from_number == "•••123"
    # Staff phones and the trip number are the school's: kept, as evidence of who sent what.
    forwards = [m for m in messages if m.kind == Kind.FORWARD]
    assert forwards and {m.to_number for m in forwards} == {SCHOOL_PHONE}
    with rec.app.app_context():
        assert {c.mobile[:3] for c in db.session.scalars(select(Contact))} == {"•••"}
        assert db.session.scalar(select(Broadcast.body)) == ""
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "retention.run"))
        assert event.data["messages_redacted"] == len(messages)
        assert event.data["contacts_redacted"] == 3 and event.data["broadcasts_redacted"] == 1
        assert verify_chain().ok
        user = db.session.get(User, rec.head.id)
        assert search.search_page(user, search.LogFilter(text="coach")).items == []
    again = runner.invoke(args=["retention", "run"])
    assert again.output.startswith("redacted 0 messages, 0 broadcasts and 0 contact numbers")
    page = rec.login(rec.head).get(f"/log/messages/{inbound[0].id}").get_data(as_text=True)
    assert "text removed by retention" in page
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0


def test_messages_held_by_a_concern_stay_whole(rec, runner):
    chat(rec)
    rec.s.text(ANN, "Look", media=("image/jpeg",))  # raises a concern by itself
    held = by_body(rec, "Has the coach left?")
    with rec.app.app_context():
        ops.report_concern(
            db.session.get(User, rec.s.leader.id),
            category="other",
            description="Keep this",
            message=db.session.get(Message, held.id),
        )
        db.session.commit()
    trip_in_the_past(rec)
    result = runner.invoke(args=["retention", "run"])
    assert "messages held by concerns kept whole" in result.output
    kept = {m.id: m for m in rec.messages()}
    assert kept[held.id].body == "Has the coach left?" and kept[held.id].from_number == MARY
    forwards = [m for m in kept.values() if m.caused_by_id == held.id]
    assert forwards and all("Has the coach left?" in m.body for m in forwards)
    ann = next(m for m in kept.values() if m.from_number == ANN)
    assert ann.body == "Look" and ann.body_redacted_at is None
    tom = next(m for m in kept.values() if m.from_number == "•••" + TOM[-3:])
    assert tom.body == ""  # not held, so it went
    with rec.app.app_context():
        mobiles = {c.name: c.mobile for c in db.session.scalars(select(Contact))}
        assert mobiles["Mary Jones"] == MARY and mobiles["Ann Smith"] == ANN
        assert mobiles["Tom Jones"].startswith("•••")
        page = rec.login(rec.head).get(f"/log/messages/{held.id}").get_data(as_text=True)
        assert "Held: linked to a concern" in page


def test_a_concern_about_a_text_sent_again_holds_every_sending_of_it(rec, runner):
    """The same words sent again and again: a concern about one of them holds them all, and
    the command they answered."""
    chat(rec)
    s = rec.s
    s.send_all()
    (first,) = rec.messages(kind=Kind.TO_CONTACT)
    s.status(first.twilio_sid, "undelivered", 30003)
    second = s.send_again(first.id)
    s.send_all()
    s.status(rec.messages(id=second)[0].twilio_sid, "failed", 30008)
    third = s.send_again(second)
    with rec.app.app_context():
        ops.report_concern(
            db.session.get(User, rec.head.id),
            category="misuse",
            description="What was said to this parent",
            message=db.session.get(Message, second),
        )
        db.session.commit()
    trip_in_the_past(rec)
    runner.invoke(args=["retention", "run"])
    kept = {m.id: m for m in rec.messages()}
    assert [kept[i].body for i in (first.id, second, third)] == ["Yes, at 9"] * 3
    assert kept[first.caused_by_id].body == "#1 Yes, at 9"
    broadcast = [m for m in kept.values() if m.kind == Kind.BROADCAST]
    assert broadcast and all(m.body == "" for m in broadcast)  # not held, so it went
    assert kept[third].retry_of_id == second and kept[second].retry_of_id == first.id


def test_a_concern_about_a_thread_holds_the_whole_thread(rec, runner):
    chat(rec)
    mary = by_body(rec, "Has the coach left?")
    with rec.app.app_context():
        ops.report_concern(
            db.session.get(User, rec.s.leader.id),
            category="bullying",
            description="The whole conversation",
            trip=db.session.get(Trip, rec.s.trip_id),
            contact=db.session.get(Contact, mary.contact_id),
        )
        db.session.commit()
    trip_in_the_past(rec)
    runner.invoke(args=["retention", "run"])
    thread = [m for m in rec.messages() if m.contact_id == mary.contact_id]
    assert thread and all(m.body_redacted_at is None for m in thread)


def test_recent_trips_and_contacts_still_on_one_are_kept(rec, runner):
    chat(rec)
    trip_in_the_past(rec, timedelta(days=300))  # within RETENTION_DAYS (400)
    runner.invoke(args=["retention", "run"])
    assert all(m.body_redacted_at is None for m in rec.messages() if m.trip_id)
    trip_in_the_past(rec, timedelta(days=200))  # now 500 days ago
    with rec.app.app_context():
        other = db.session.get(Trip, rec.other_trip_id)
        trip_ops.import_roster(
            FACTORY,
            other,
            (
                "pupil_first_name,pupil_last_name,year_group,contact_name,relationship,mobile\n"
                f"Sam,Jones,Year 6,Mary Jones,mother,{MARY}\n"
            ).encode(),
        )
        db.session.commit()
    runner.invoke(args=["retention", "run"])
    with rec.app.app_context():
        mobiles = {c.name: c.mobile for c in db.session.scalars(select(Contact))}
        assert mobiles["Mary Jones"] == MARY  # on the farm visit, which is recent
        assert mobiles["Tom Jones"].startswith("•••")


def test_a_dry_run_changes_nothing(rec, runner):
    chat(rec)
    trip_in_the_past(rec)
    result = runner.invoke(args=["retention", "run", "--dry-run"])
    assert result.output.startswith("would redact ")
    assert all(m.body for m in rec.messages())
    with rec.app.app_context():
        assert (
            db.session.scalar(select(AuditEvent).where(AuditEvent.action == "retention.run"))
            is None
        )


def test_texts_to_no_trip_count_from_when_they_arrived(rec, app):
    rec.s.text(MARY, "Is this the trip number?", to="+441234000099")
    rec.age(LONG_AGO)
    with app.app_context():
        result = ops.run_retention(FACTORY, now=utcnow())
        db.session.commit()
        assert result.messages == 2  # the text and its auto-reply
    assert all(m.body == "" for m in rec.messages())

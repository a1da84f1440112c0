"""Concerns: reported by staff about what they can see, raised by the relay by itself, handled
by the safeguarding lead and the Headteacher through open, investigating and closed."""

from datetime import timedelta

import pytest
from flask_migrate import downgrade, upgrade
from sqlalchemy import func, select, text

from tests.record import ANN, DSL_PHONE, HEAD_PHONE, MARY, SCHOOL_PHONE, TRIP_NUMBER
from tests.relay.scenario import e164
from tests.trips.rosters import mobile
from tripcomms.approvals import operations as approval_ops
from tripcomms.audit.models import AuditEvent
from tripcomms.audit.operations import CLI, verify_chain
from tripcomms.auth.models import User
from tripcomms.errors import Conflict, InvalidInput, NotFound, PolicyError
from tripcomms.extensions import db
from tripcomms.relay.models import Kind, Message, Status
from tripcomms.safeguarding import operations as ops
from tripcomms.safeguarding.models import (
    Category,
    Concern,
    ConcernNotice,
    ConcernStatus,
    Outcome,
)
from tripcomms.safeguarding.queries import is_held
from tripcomms.trips.models import Trip

NOTIFY = "+441234000500"
LEADER_OWN = e164(900)  # the scenario leader's registered personal number


@pytest.fixture
def app_config(app_config):
    return {**app_config, "NOTIFY_FROM": NOTIFY}


def concerns(app) -> list[Concern]:
    with app.app_context():
        rows = list(db.session.scalars(select(Concern).order_by(Concern.id)))
        for c in rows:
            _ = c.updates, c.message
        db.session.expunge_all()
        return rows


def notices(app) -> list[Message]:
    with app.app_context():
        rows = list(
            db.session.scalars(select(Message).where(Message.kind == Kind.NOTIFY).order_by("id"))
        )
        db.session.expunge_all()
        return rows


def first_inbound(rec, sender=MARY) -> Message:
    return next(m for m in rec.s.inbound() if m.from_number == sender)


# --- Reported by staff -----------------------------------------------------------------------


def test_a_leader_reports_a_concern_about_a_message(rec):
    rec.s.text(MARY, "Can you send me photos of the other children?")
    message = first_inbound(rec)
    client = rec.login(rec.s.leader)
    form = client.get(f"/concerns/new?message={message.id}")
    assert form.status_code == 200 and "What kind of concern is it?" in form.get_data(as_text=True)
    response = client.post_form(
        f"/concerns/new?message={message.id}",
        {"category": "safeguarding", "description": "Asking for photos of other pupils."},
    )
    assert response.status_code == 303
    assert response.location == f"/log/messages/{message.id}"
    [concern] = concerns(rec.app)
    assert (concern.category, concern.status, concern.raised_by_id) == (
        Category.SAFEGUARDING,
        ConcernStatus.OPEN,
        rec.s.leader.id,
    )
    assert concern.message_id == message.id and concern.trip_id == rec.s.trip_id
    assert concern.contact_id == message.contact_id
    assert [u.to_status for u in concern.updates] == [ConcernStatus.OPEN]
    with rec.app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "concern.raised"))
        assert event.actor_id == rec.s.leader.id
        assert "photos" not in str(event.data) and len(event.data["description_digest"]) == 64
    # The leader sees that they raised it; the DSL and the head were texted.
    page = client.get(f"/log/messages/{message.id}").get_data(as_text=True)
    assert f"Concern #{concern.id}" in page
    assert sorted(n.to_number for n in notices(rec.app)) == sorted([DSL_PHONE, HEAD_PHONE])


def test_a_concern_about_a_parents_whole_conversation(rec):
    rec.s.text(ANN, "hello")
    contact_id = first_inbound(rec, ANN).contact_id
    client = rec.login(rec.s.helper)
    url = f"/concerns/new?trip={rec.s.trip_id}&contact={contact_id}"
    assert "#3 Ann Smith" in client.get(url).get_data(as_text=True)
    response = client.post_form(url, {"category": "bullying", "description": "Rude texts."})
    assert response.status_code == 303
    [concern] = concerns(rec.app)
    assert concern.message_id is None and concern.contact_id == contact_id


def test_a_concern_about_what_the_user_may_not_see_is_not_found(rec):
    rec.s.text(MARY, "hello")
    message = first_inbound(rec)
    client = rec.login(rec.other_leader)
    for url in (
        f"/concerns/new?message={message.id}",
        f"/concerns/new?trip={rec.s.trip_id}&contact={message.contact_id}",
        f"/concerns/new?trip={rec.other_trip_id}&contact={message.contact_id}",
        "/concerns/new?message=999999",
        "/concerns/new",
    ):
        assert client.get(url).status_code == 404, url
        assert client.post_form(url, {"category": "other", "description": "x"}).status_code == 404
    # The office reports about texts in its review queue, not about trip conversations.
    client = rec.login(rec.office)
    assert client.get(f"/concerns/new?message={message.id}").status_code == 404
    assert concerns(rec.app) == []
    with rec.app.app_context():
        other = db.session.get(User, rec.other_leader.id)
        with pytest.raises(NotFound):
            ops.report_concern(
                other,
                category="other",
                description="x",
                message=db.session.get(Message, message.id),
            )


def test_auditors_report_nothing(rec):
    rec.s.text(MARY, "hello")
    message = first_inbound(rec)
    client = rec.login(rec.auditor)
    assert client.get(f"/concerns/new?message={message.id}").status_code == 403
    with rec.app.app_context():
        auditor = db.session.get(User, rec.auditor.id)
        with pytest.raises(PolicyError):
            ops.report_concern(
                auditor,
                category="other",
                description="x",
                message=db.session.get(Message, message.id),
            )


@pytest.mark.parametrize(
    "data",
    [
        {"category": "", "description": "Something"},
        {"category": "gossip", "description": "Something"},
        {"category": "misuse", "description": "   "},
        {"category": "misuse", "description": "x" * 4001},
    ],
)
def test_a_concern_needs_a_category_and_a_description(rec, data):
    rec.s.text(MARY, "hello")
    message = first_inbound(rec)
    response = rec.login(rec.s.leader).post_form(f"/concerns/new?message={message.id}", data)
    assert response.status_code == 422
    assert concerns(rec.app) == []


def test_operation_refuses_bad_category_and_missing_subject(rec):
    with rec.app.app_context():
        leader = db.session.get(User, rec.s.leader.id)
        with pytest.raises(InvalidInput, match="choose what kind"):
            ops.report_concern(leader, category="nope", description="x")
        with pytest.raises(InvalidInput, match="which message"):
            ops.report_concern(leader, category="other", description="x")


# --- Raised by the relay ---------------------------------------------------------------------


def test_a_picture_raises_a_concern_in_the_same_transaction(rec):
    rec.s.text(MARY, "Look", media=("image/jpeg", "image/png"))
    message = first_inbound(rec)
    [concern] = concerns(rec.app)
    assert (concern.category, concern.rule, concern.raised_by_id) == (
        Category.PICTURE,
        "media",
        None,
    )
    assert concern.message_id == message.id
    assert "2 pictures or files (image/jpeg, image/png)" in concern.description
    assert len(notices(rec.app)) == 2


def test_a_pupils_own_number_raises_a_safeguarding_concern(rec, app):
    rec.s.import_roster(
        ["Sam,Jones,Year 6,Mary Jones,mother,07400 000001,,,07400 000040"],
        header=(
            "pupil_first_name,pupil_last_name,year_group,contact_name,relationship,mobile,"
            "image_restricted,no_contact,pupil_mobile"
        ),
    )
    rec.s.text(e164(40), "hi miss can u come get me")
    [concern] = concerns(app)
    assert (concern.category, concern.rule) == (Category.SAFEGUARDING, "pupil")
    assert "pupil's own number" in concern.description


def test_an_unapproved_staff_phone_texting_again_and_again_raises_one_concern(rec, app):
    for n in range(5):
        rec.s.text(LEADER_OWN, f"#1 message {n}")
        expected = 0 if n < 2 else 1
        assert len(concerns(app)) == expected, n
    [concern] = concerns(app)
    assert (concern.category, concern.rule) == (Category.MISUSE, "unapproved_phone")
    assert concern.message.from_number == LEADER_OWN


def test_ordinary_texts_raise_nothing(rec, app):
    rec.s.text(MARY, "Has the coach left?")
    rec.s.text(SCHOOL_PHONE, "#1 Yes")
    assert concerns(app) == []


def test_no_texts_about_concerns_when_switched_off_or_no_notify_number(rec, app):
    app.config["CONCERN_SMS"] = False
    rec.s.text(MARY, "Look", media=("image/jpeg",))
    app.config["CONCERN_SMS"] = True
    app.config["NOTIFY_FROM"] = ""
    rec.s.text(ANN, "Look", media=("image/jpeg",))
    assert len(concerns(app)) == 2 and notices(app) == []
    assert not any(c.notified for c in concerns(app))


def test_concern_texts_go_from_the_notify_number_and_name_no_child(rec, app):
    rec.s.text(MARY, "Look at Sam", media=("image/jpeg",))
    sent = notices(app)
    assert {(n.from_number, n.status) for n in sent} == {(NOTIFY, Status.PENDING)}
    assert all("Sam" not in n.body and "Look" not in n.body for n in sent)
    assert all(n.body.endswith("/concerns/1") for n in sent)
    rec.s.send_all()
    assert sorted(to for to, *_ in rec.s.gateway.sent if to in (DSL_PHONE, HEAD_PHONE)) == sorted(
        [DSL_PHONE, HEAD_PHONE]
    )
    assert all(from_ == NOTIFY for to, from_, *_ in rec.s.gateway.sent if to == DSL_PHONE)
    assert TRIP_NUMBER not in {from_ for to, from_, *_ in rec.s.gateway.sent if to == DSL_PHONE}


def test_concern_texts_hang_on_the_concern_and_show_on_its_pages(rec, app):
    rec.s.text(MARY, "Look at Sam", media=("image/jpeg",))
    message = first_inbound(rec)
    [concern] = concerns(app)
    sent = notices(app)
    # Caused by no message: caused_by is for the relay's replies and forwards.
    assert len(sent) == 2 and all(n.caused_by_id is None for n in sent)
    assert all(m.kind != Kind.NOTIFY for m in rec.s.outbound(caused_by_id=message.id))
    with app.app_context():
        linked = db.session.get(Concern, concern.id).notices
        assert [n.id for n in linked] == [n.id for n in sent]
        assert is_held(db.session.get(Message, sent[0].id))  # retention keeps them whole

    dsl = rec.login(rec.dsl)
    page = dsl.get(f"/concerns/{concern.id}").get_data(as_text=True)
    for notice in sent:
        assert f'href="/log/messages/{notice.id}">Message {notice.id}</a> to ' in page
    assert "Dee Safeguarding" in page and "Helen Head" in page
    record = dsl.get(f"/log/messages/{message.id}").get_data(as_text=True)
    assert "Texted about it:" in record
    # Under the concern only: the relay's forward is what the text caused.
    assert all(record.count(f'href="/log/messages/{n.id}">notify {n.id}</a>') == 1 for n in sent)
    assert "It caused:" in record and ">forward " in record
    notice_page = dsl.get(f"/log/messages/{sent[0].id}").get_data(as_text=True)
    assert f'about <a href="/concerns/{concern.id}">concern #{concern.id}</a>' in notice_page
    assert "In answer to" not in notice_page


def test_a_late_reply_text_hangs_on_its_escalation(rec, app):
    rec.s.text(MARY, "Has the coach left?")
    waiting = first_inbound(rec)
    with app.app_context():
        for m in db.session.scalars(select(Message)):
            m.created_at -= timedelta(minutes=90)
        db.session.commit()
        [escalation] = ops.escalate_late_replies(CLI).escalated
        db.session.commit()
        notice = db.session.get(Message, escalation.notice_id)
        assert (notice.kind, notice.caused_by_id) == (Kind.NOTIFY, None)
    page = rec.login(rec.head).get(f"/log/messages/{notice.id}").get_data(as_text=True)
    assert f'that <a href="/log/messages/{waiting.id}">message {waiting.id}</a>' in page
    assert "had waited too long for a staff reply" in page


def test_the_migration_moves_notices_between_caused_by_and_their_concern(rec, app):
    """0010 both ways, with notices in the database: down, they are caused by the message
    the concern is about (or the text escalated); up again, they hang on their concern."""
    rec.s.text(MARY, "Look", media=("image/jpeg",))  # a concern about a message
    rec.s.text(ANN, "Has the coach left?")
    with app.app_context():
        db.session.add(
            Concern(
                trip_id=rec.s.trip_id,
                contact_id=first_inbound(rec, ANN).contact_id,
                category=Category.OTHER,
                description="About her texts",
                status=ConcernStatus.OPEN,
            )
        )  # a concern about a whole thread: its notice is caused by nothing
        db.session.commit()
        thread_concern = db.session.scalar(select(func.max(Concern.id)))
        ops._notify_handlers(db.session.get(Concern, thread_concern))
        for m in db.session.scalars(select(Message).where(Message.from_number == ANN)):
            m.created_at -= timedelta(minutes=90)
        [escalation] = ops.escalate_late_replies(CLI).escalated
        db.session.commit()
        about = {c.id: c.message_id for c in db.session.scalars(select(Concern))}
        links = dict(
            db.session.execute(select(ConcernNotice.message_id, ConcernNotice.concern_id)).all()
        )
        late = (escalation.notice_id, escalation.message_id)
        assert len(links) == 4 and late[0] is not None
        db.session.remove()
        try:
            downgrade(revision="0009_message_sender_index")
            caused = dict(
                db.session.execute(
                    text("SELECT id, caused_by_id FROM messages WHERE kind = 'notify'")
                ).all()
            )
            assert caused == {**{m: about[c] for m, c in links.items()}, late[0]: late[1]}
            db.session.remove()
        finally:
            upgrade()
        assert (
            dict(
                db.session.execute(select(ConcernNotice.message_id, ConcernNotice.concern_id)).all()
            )
            == links
        )
        assert (
            db.session.scalars(
                select(Message.caused_by_id).where(Message.kind == Kind.NOTIFY)
            ).all()
            == [None] * 5
        )


# --- Handled by the DSL ----------------------------------------------------------------------


def raised(rec) -> int:
    rec.s.text(MARY, "Look", media=("image/jpeg",))
    return concerns(rec.app)[0].id


def test_the_dsl_investigates_and_closes_with_an_outcome(rec):
    concern_id = raised(rec)
    client = rec.login(rec.dsl)
    queue = client.get("/concerns").get_data(as_text=True)
    assert f"#{concern_id} Picture received" in queue
    page = client.get(f"/concerns/{concern_id}").get_data(as_text=True)
    assert "Start investigating" in page
    response = client.post_form(
        f"/concerns/{concern_id}/investigate", {"investigate-reason": "Calling Mrs Jones"}
    )
    assert response.status_code == 303
    response = client.post_form(
        f"/concerns/{concern_id}/close",
        {"close-outcome": "advice_given", "close-reason": "A holiday photo; advised parent."},
    )
    assert response.status_code == 303
    [concern] = concerns(rec.app)
    assert (concern.status, concern.outcome, concern.handler_id) == (
        ConcernStatus.CLOSED,
        Outcome.ADVICE_GIVEN,
        rec.dsl.id,
    )
    assert concern.closed_at is not None
    assert [(u.from_status, u.to_status) for u in concern.updates] == [
        (None, "open"),
        ("open", "investigating"),
        ("investigating", "closed"),
    ]
    with rec.app.app_context():
        actions = list(
            db.session.scalars(
                select(AuditEvent.action).where(AuditEvent.subject_type == "concerns")
            )
        )
        assert actions == [
            "concern.raised",
            "concern.notified",
            "concern.investigate",
            "concern.close",
        ]
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "concern.close"))
        assert event.data["outcome"] == "advice_given" and "holiday" not in str(event.data)
        assert verify_chain().ok
    closed = client.get("/concerns?show=closed").get_data(as_text=True)
    assert "A holiday photo; advised parent." not in closed and f"#{concern_id}" in closed
    detail = client.get(f"/concerns/{concern_id}").get_data(as_text=True)
    assert "A holiday photo; advised parent." in detail and "Reopen" in detail


def test_moves_out_of_order_and_without_reasons_are_refused(rec):
    concern_id = raised(rec)
    client = rec.login(rec.head)
    assert (
        client.post_form(f"/concerns/{concern_id}/reopen", {"reopen-reason": "x"}).status_code
        == 422
    )
    assert (
        client.post_form(
            f"/concerns/{concern_id}/investigate", {"investigate-reason": ""}
        ).status_code
        == 422
    )
    assert (
        client.post_form(
            f"/concerns/{concern_id}/close", {"close-outcome": "bogus", "close-reason": "x"}
        ).status_code
        == 422
    )
    assert concerns(rec.app)[0].status == ConcernStatus.OPEN
    with rec.app.app_context():
        concern = db.session.get(Concern, concern_id)
        head = db.session.get(User, rec.head.id)
        ops.close_concern(head, concern, Outcome.UNFOUNDED, "Straight to closed")
        with pytest.raises(Conflict):
            ops.close_concern(head, concern, Outcome.UNFOUNDED, "again")
        with pytest.raises(Conflict):
            ops.start_investigating(head, concern, "too late")
        ops.reopen_concern(head, concern, "New information")
        assert concern.status == ConcernStatus.INVESTIGATING and concern.outcome is None
        leader = db.session.get(User, rec.s.leader.id)
        with pytest.raises(PolicyError):
            ops.close_concern(leader, concern, Outcome.UNFOUNDED, "not mine to close")
        db.session.rollback()


def test_only_the_dsl_and_head_see_the_queue(rec):
    concern_id = raised(rec)
    for user in (rec.s.leader, rec.office, rec.auditor, rec.other_leader):
        client = rec.login(user)
        assert client.get("/concerns").status_code == 403
        assert client.get(f"/concerns/{concern_id}").status_code == 403
    client = rec.login(rec.head)
    assert client.get("/concerns/999").status_code == 404
    assert "1 open, 0 being investigated" in client.get("/").get_data(as_text=True)


def test_leaders_see_only_the_concerns_they_raised_on_a_message(rec, app):
    rec.s.text(MARY, "Look", media=("image/jpeg",))
    message = first_inbound(rec)
    page = rec.login(rec.s.leader).get(f"/log/messages/{message.id}").get_data(as_text=True)
    assert "Concern #" not in page and "None that you raised" in page
    assert "Held: linked to a concern" not in page  # nor that there is one
    page = rec.login(rec.dsl).get(f"/log/messages/{message.id}").get_data(as_text=True)
    assert "Concern #1" in page and "Held: linked to a concern" in page


def test_leaders_see_only_the_concerns_they_raised_in_their_trip_report(rec, app):
    """A concern may be about the trip's own staff: the one it is about must not read who
    raised it, or that it exists, in the trip report (the message page hides it too)."""
    rec.s.text(MARY, "Look", media=("image/jpeg",))  # raised by tripcomms itself
    message = first_inbound(rec)

    def report_as(user, category: str, description: str) -> None:
        with app.app_context():
            ops.report_concern(
                db.session.get(User, user.id),
                category=category,
                description=description,
                message=db.session.get(Message, message.id),
            )
            db.session.commit()

    report_as(rec.s.helper, "misuse", "Liam gave out his number")
    report = f"/log/trips/{rec.s.trip_id}/report"
    page = rec.login(rec.s.leader).get(report).get_data(as_text=True)
    assert "Picture received" not in page and "Misuse of phones" not in page
    assert "(Hana Helper)" not in page and "new concern" not in page
    assert "None that you raised." in page
    for reader in (rec.dsl, rec.head, rec.auditor):
        page = rec.login(reader).get(report).get_data(as_text=True)
        assert "Picture received" in page and "(Hana Helper)" in page, reader.name
    # What the leader raises themselves, they see.
    report_as(rec.s.leader, "other", "Mrs Jones sounded upset")
    page = rec.login(rec.s.leader).get(report).get_data(as_text=True)
    assert "(Liam Leader)" in page and "(Hana Helper)" not in page


def test_leaders_do_not_read_the_concern_texts_sent_to_the_dsl_and_head(rec, app):
    rec.s.text(MARY, "Look", media=("image/jpeg",))
    message = first_inbound(rec)
    sent = notices(app)
    assert len(sent) == 2 and all("new concern #1" in n.body for n in sent)
    leader = rec.login(rec.s.leader)
    for url in ("/log", "/log/export.csv", f"/log/messages/{message.id}"):
        page = leader.get(url).get_data(as_text=True)
        assert "new concern" not in page and "notify" not in page, url
    for notice in sent:
        assert leader.get(f"/log/messages/{notice.id}").status_code == 404
    head = rec.login(rec.head)
    assert head.get("/log").get_data(as_text=True).count("new concern #1") == 2
    assert f"notify {sent[0].id}" in head.get(f"/log/messages/{message.id}").get_data(as_text=True)


def test_leaders_still_read_the_texts_tripcomms_sent_to_them(rec, app):
    with app.app_context():
        leader = db.session.get(User, rec.s.leader.id)
        approval = approval_ops.request_approval(
            leader,
            db.session.get(Trip, rec.s.trip_id),
            leader,
            leader.personal_numbers[0].number,
            "No signal on the school phone",
        )
        approval_ops.approve(db.session.get(User, rec.head.id), approval)
        db.session.commit()
    [told] = [n for n in notices(app) if n.staff_id == rec.s.leader.id]
    page = rec.login(rec.s.leader).get("/log").get_data(as_text=True)
    assert f"/log/messages/{told.id}" in page
    asked = [n for n in notices(app) if n.staff_id == rec.head.id]
    assert asked and all(f'/log/messages/{n.id}"' not in page for n in asked)


def test_handler_numbers_skip_staff_without_a_number_and_inactive_staff(rec, factory, app):
    factory.user("dsl", name="No Number")
    factory.user("head", name="Gone", personal_numbers=(mobile(805),), active=False)
    with app.app_context():
        from tripcomms.safeguarding.notices import handler_numbers

        assert sorted(n for _, n in handler_numbers()) == sorted([DSL_PHONE, HEAD_PHONE])

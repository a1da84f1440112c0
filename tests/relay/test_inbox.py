"""The leaders' web inbox: threads, unread and waiting, a conversation, replying from the web."""

import re
from datetime import timedelta

import pytest
from markupsafe import escape
from sqlalchemy import func, select

from tests.helpers import FACTORY
from tests.relay.scenario import SCHOOL_PHONE, TRIP_NUMBER, e164
from tripcomms.audit.models import AuditEvent
from tripcomms.extensions import db
from tripcomms.relay.models import Kind, Message, SendKey, Status
from tripcomms.trips import operations as trip_ops
from tripcomms.trips.models import Trip

MARY, TOM, ANN = e164(1), e164(2), e164(3)
KEY = re.compile(r'name="request_key" type="hidden" value="([^"]+)"')


def inbox_url(scenario, tail=""):
    return f"/trips/{scenario.trip_id}/inbox{tail}"


def form_key(page: str) -> str:
    match = KEY.search(page)
    assert match, "no one-time key on the page"
    return match.group(1)


def send(scenario, code: int, body: str, key: str | None = None):
    client = scenario.client
    if key is None:
        key = form_key(client.get(inbox_url(scenario, f"/{code}")).get_data(as_text=True))
    return client.post_form(inbox_url(scenario, f"/{code}"), {"body": body, "request_key": key})


@pytest.fixture
def leader(scenario):
    scenario.client.login(scenario.leader.email)
    return scenario.leader


def test_a_parent_text_is_a_thread_with_unread_and_waiting_badges(scenario, leader):
    scenario.text(MARY, "Has the coach left?")
    page = scenario.client.get(inbox_url(scenario)).get_data(as_text=True)
    assert "#1 Mary Jones" in page and "For Sam J." in page
    assert "Has the coach left?" in page
    assert "1 unread" in page and "Waiting for a reply since" in page

    data = scenario.client.get(inbox_url(scenario, ".json")).get_json()
    assert data["unread"] == 1 and data["waiting"] == 1
    (thread,) = data["threads"]
    assert thread["code"] == 1 and thread["name"] == "Mary Jones"
    assert thread["pupils"] == "Sam J." and thread["last_from"] == "parent"
    assert thread["url"] == f"/trips/{scenario.trip_id}/inbox/1"
    assert thread["unread"] == 1 and thread["waiting_since"].endswith("Z")
    assert thread["overdue"] is False


def test_threads_are_newest_first(scenario, leader):
    scenario.text(MARY, "first")
    scenario.text(ANN, "second")
    scenario.text(TOM, "third")
    data = scenario.client.get(inbox_url(scenario, ".json")).get_json()
    assert [t["code"] for t in data["threads"]] == [2, 3, 1]


def test_opening_a_thread_marks_it_read_for_that_person_only(scenario, leader, factory, app):
    scenario.text(MARY, "Is Sam OK?")
    page = scenario.client.get(inbox_url(scenario, "/1")).get_data(as_text=True)
    assert "Is Sam OK?" in page
    assert scenario.client.get(inbox_url(scenario, ".json")).get_json()["unread"] == 0
    with app.app_context():
        events = db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.action == "thread.read")
        ).all()
        assert events == ["thread.read"]

    head = factory.user("head")
    other = app.test_client()
    other.login(head.email)
    assert other.get(inbox_url(scenario, ".json")).get_json()["unread"] == 1


def test_the_read_marker_follows_the_page_script_and_needs_csrf(scenario, leader, app):
    scenario.client.get(inbox_url(scenario, "/1"))
    scenario.text(MARY, "One more thing")
    newest = scenario.inbound()[-1].id
    url = inbox_url(scenario, "/1/read")
    assert scenario.client.post(url, data={"up_to": newest}).status_code == 400  # no token
    token = scenario.client.csrf_token()
    response = scenario.client.post(url, data={"up_to": newest}, headers={"X-CSRFToken": token})
    assert response.get_json() == {"ok": True, "moved": True}
    assert scenario.client.get(inbox_url(scenario, ".json")).get_json()["unread"] == 0
    again = scenario.client.post(url, data={"up_to": newest}, headers={"X-CSRFToken": token})
    assert again.get_json() == {"ok": True, "moved": False}


def test_the_conversation_shows_texts_replies_by_web_and_sms_and_receipts(scenario, leader):
    scenario.text(MARY, "Are we on time?")
    scenario.text(SCHOOL_PHONE, "#1 Yes, back at 15:30")
    response = send(scenario, 1, "Sam says hello")
    assert response.status_code == 303
    scenario.send_all()
    web = scenario.outbound(kind=Kind.TO_CONTACT, via="web")[0]
    scenario.status(web.twilio_sid, "delivered")

    data = scenario.client.get(inbox_url(scenario, "/1.json")).get_json()
    got = [(m["side"], m["who"], m["how"], m["body"], m["state"]) for m in data["messages"]]
    assert got == [
        ("parent", "Mary Jones", "", "Are we on time?", "received"),
        ("staff", "Liam Leader", "by text", "Yes, back at 15:30", "queued"),
        ("staff", "Liam Leader", "on the web", "Sam says hello", "delivered"),
    ]
    assert data["messages"][0]["note"] == "Passed to 1 staff phone; delivered to 0."
    assert data["messages"][2]["status"] == "Delivered"
    assert data["can_send"] is True

    assert web.from_number == TRIP_NUMBER and web.to_number == MARY
    assert scenario.client.get(inbox_url(scenario, ".json")).get_json()["waiting"] == 0


def test_a_reply_from_the_web_is_queued_audited_and_flashed(scenario, leader, app):
    response = send(scenario, 3, "Ella is fine")
    assert response.status_code == 303
    page = scenario.client.get(response.location).get_data(as_text=True)
    assert "Sent to #3 Ann Smith." in page
    (message,) = scenario.outbound(kind=Kind.TO_CONTACT)
    assert (message.status, message.via, message.staff_id) == (
        Status.PENDING,
        "web",
        scenario.leader.id,
    )
    with app.app_context():
        assert db.session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "message.queued")
        )


def test_an_empty_message_is_refused(scenario, leader):
    response = send(scenario, 1, "   ")
    assert response.status_code == 422
    assert "there is no message to send" in response.get_data(as_text=True)
    assert scenario.outbound() == []


def test_2000_characters_are_refused_with_the_count(scenario, leader):
    response = send(scenario, 1, "x" * 2000)
    assert response.status_code == 422
    assert "the message is 2,000 characters; the limit is 1,600" in response.get_data(as_text=True)
    assert scenario.outbound() == []


def test_a_double_click_on_send_sends_one_message(scenario, leader, app):
    key = form_key(scenario.client.get(inbox_url(scenario, "/1")).get_data(as_text=True))
    first = send(scenario, 1, "Back at 4", key)
    second = send(scenario, 1, "Back at 4", key)
    assert first.status_code == second.status_code == 303
    assert [m.body for m in scenario.outbound()] == ["Back at 4"]
    page = scenario.client.get(second.location).get_data(as_text=True)
    assert "not sent twice" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SendKey)) == 1


def test_each_page_load_gives_a_new_key(scenario, leader):
    one = form_key(scenario.client.get(inbox_url(scenario, "/1")).get_data(as_text=True))
    two = form_key(scenario.client.get(inbox_url(scenario, "/1")).get_data(as_text=True))
    assert one != two
    send(scenario, 1, "first", one)
    send(scenario, 1, "second", two)
    assert [m.body for m in scenario.outbound()] == ["first", "second"]


def test_a_form_without_a_key_is_refused(scenario, leader):
    response = scenario.client.post_form(inbox_url(scenario, "/1"), {"body": "hello"})
    assert response.status_code == 422
    assert "this form has expired" in response.get_data(as_text=True)
    assert scenario.outbound() == []


def test_a_staff_number_in_a_reply_is_blocked_kept_and_shown(scenario, leader):
    response = send(scenario, 1, "Call me on 07400 000900")
    assert response.status_code == 422
    assert "a staff member&#39;s personal number (policy 50)" in response.get_data(as_text=True)
    (blocked,) = scenario.outbound()
    assert blocked.status == Status.BLOCKED and blocked.contact_id is not None
    data = scenario.client.get(inbox_url(scenario, "/1.json")).get_json()
    (shown,) = data["messages"]
    assert shown["state"] == "blocked"
    assert shown["reason"] == "a staff member's personal number (policy 50)"


def test_a_placeholder_must_be_filled_in(scenario, leader):
    response = send(scenario, 1, "Coach delayed by {minutes} minutes")
    assert response.status_code == 422
    assert "fill in {minutes} before sending" in response.get_data(as_text=True)
    assert scenario.outbound() == []


def test_script_in_a_parent_text_is_shown_as_text(scenario, leader):
    attack = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    scenario.text(MARY, attack)
    for url in (inbox_url(scenario), inbox_url(scenario, "/1")):
        page = scenario.client.get(url).get_data(as_text=True)
        assert attack not in page
        assert str(escape(attack)) in page
    data = scenario.client.get(inbox_url(scenario, "/1.json")).get_json()
    assert data["messages"][0]["body"] == attack  # JSON text; the script makes text nodes of it


def test_leaders_never_see_parents_numbers(scenario, leader):
    scenario.text(MARY, "hello")
    send(scenario, 1, "hi")
    pages = [
        scenario.client.get(inbox_url(scenario)).get_data(as_text=True),
        scenario.client.get(inbox_url(scenario, ".json")).get_data(as_text=True),
        scenario.client.get(inbox_url(scenario, "/1")).get_data(as_text=True),
        scenario.client.get(inbox_url(scenario, "/1.json")).get_data(as_text=True),
    ]
    for page in pages:
        for number in (MARY, TOM, ANN):
            assert number not in page
            assert number[3:] not in page  # without +44
            assert "0" + number[3:7] not in page or "0" + number[3:] not in page


def test_an_opted_out_parent_cannot_be_replied_to(scenario, leader):
    scenario.text(MARY, "STOP")
    page = scenario.client.get(inbox_url(scenario, "/1")).get_data(as_text=True)
    assert "has opted out of texts from this trip number (STOP)" in page
    assert 'name="body"' not in page
    response = send(scenario, 1, "hello", key="k" * 24)
    assert response.status_code == 422
    assert "#1 Mary Jones has opted out of texts (STOP)" in response.get_data(as_text=True)
    data = scenario.client.get(inbox_url(scenario, ".json")).get_json()
    assert data["threads"][0]["opted_out"] is True and data["waiting"] == 0


def test_a_no_contact_parent_is_not_in_the_inbox(scenario, leader):
    scenario.import_roster(
        [
            f"Sam,Jones,Year 6,Mary Jones,mother,{MARY},no",
            f"Sam,Jones,Year 6,Tom Jones,father,{TOM},yes",
            f"Ella,Smith,Year 5,Ann Smith,carer,{ANN},no",
        ],
        header="pupil_first_name,pupil_last_name,year_group,contact_name,relationship,mobile,"
        "no_contact",
    )
    scenario.text(TOM, "Let me talk to Sam")
    assert scenario.client.get(inbox_url(scenario, ".json")).get_json()["threads"] == []
    assert scenario.client.get(inbox_url(scenario, "/2")).status_code == 404
    assert "Tom Jones" not in scenario.client.get(inbox_url(scenario)).get_data(as_text=True)


def test_nothing_is_sent_outside_the_trips_window(scenario, leader, app):
    with app.app_context():
        trip = db.session.get(Trip, scenario.trip_id)
        trip.starts_at = trip.starts_at - timedelta(days=3)
        trip.ends_at = trip.ends_at - timedelta(days=3)
        db.session.commit()
    page = scenario.client.get(inbox_url(scenario, "/1")).get_data(as_text=True)
    assert "nothing can be sent outside that time" in page
    response = send(scenario, 1, "hello", key="k" * 24)
    assert response.status_code == 422
    assert "this trip&#39;s number works only from" in response.get_data(as_text=True)
    assert scenario.outbound() == []


def test_a_template_picked_without_javascript_fills_the_box(scenario, leader, app):
    from tripcomms.auth.models import User
    from tripcomms.relay import operations as ops

    with app.app_context():
        office = db.session.get(User, scenario.leader.id)
        template = ops.create_template(office, name="Delayed", body="Coach delayed by {minutes}")
        db.session.commit()
        template_id = template.id
    page = scenario.client.get(inbox_url(scenario, "/1")).get_data(as_text=True)
    assert 'data-body="Coach delayed by {minutes}"' in page
    page = scenario.client.get(inbox_url(scenario, f"/1?template={template_id}"))
    assert "Coach delayed by {minutes}</textarea>" in page.get_data(as_text=True)
    assert f'value="{template_id}" data-body="Coach delayed by {{minutes}}" selected>' in (
        page.get_data(as_text=True)
    )


# --- Who may see what -------------------------------------------------------------------------


def other_trip(factory, app):
    other_leader = factory.user("leader", name="Olga Other")
    trip_id = factory.trip(other_leader, title="Farm visit")
    return other_leader, trip_id


def test_a_leader_opening_another_trips_inbox_or_thread_gets_404(scenario, factory, app):
    other_leader, _ = other_trip(factory, app)
    scenario.text(MARY, "hello")
    client = app.test_client()
    client.login(other_leader.email)
    base = f"/trips/{scenario.trip_id}"
    for url in (
        "/inbox",
        "/inbox.json",
        "/inbox/1",
        "/inbox/1.json",
        "/inbox/open?code=1",
        "/broadcast",
    ):
        assert client.get(base + url).status_code == 404, url
    for url in ("/inbox/1", "/inbox/1/read", "/broadcast", "/broadcast/send"):
        assert client.post_form(base + url, {"body": "x", "up_to": 1}).status_code == 404, url
    message_id = scenario.inbound()[0].id
    assert client.post_form(f"{base}/messages/{message_id}/retry").status_code == 404
    assert scenario.outbound(kind=Kind.TO_CONTACT) == []


def test_a_thread_that_does_not_exist_is_404(scenario, leader):
    assert scenario.client.get(inbox_url(scenario, "/99")).status_code == 404
    assert scenario.client.get(inbox_url(scenario, "/99.json")).status_code == 404


def test_staff_on_the_trip_and_the_head_may_use_it_the_office_may_not(scenario, factory, app):
    head = factory.user("head")
    office = factory.user("office")
    for user, status in ((scenario.helper, 200), (head, 200), (office, 403)):
        client = app.test_client()
        client.login(user.email)
        assert client.get(inbox_url(scenario)).status_code == status, user.email


def test_an_office_and_leader_user_not_on_the_trip_gets_404(scenario, factory, app):
    both = factory.user("office", "leader")
    client = app.test_client()
    client.login(both.email)
    assert client.get(inbox_url(scenario)).status_code == 404


# --- Links to it ------------------------------------------------------------------------------


def test_the_trip_page_and_the_home_page_link_to_the_inbox(scenario, leader):
    scenario.text(MARY, "hello")
    trip_page = scenario.client.get(f"/trips/{scenario.trip_id}").get_data(as_text=True)
    assert "Texts with parents" in trip_page and "1 unread" in trip_page
    assert f'href="/trips/{scenario.trip_id}/inbox"' in trip_page
    home = scenario.client.get("/").get_data(as_text=True)
    assert "Inbox: Science Museum" in home and "1 waiting for a reply" in home


def test_the_trip_page_has_no_inbox_panel_for_the_office(scenario, factory, app):
    office = factory.user("office")
    client = app.test_client()
    client.login(office.email)
    assert "Texts with parents" not in client.get(f"/trips/{scenario.trip_id}").get_data(
        as_text=True
    )


def test_a_contact_dropped_from_the_roster_keeps_their_thread(scenario, leader, app):
    scenario.text(ANN, "hello")
    with app.app_context():
        trip_ops.import_roster(
            FACTORY,
            db.session.get(Trip, scenario.trip_id),
            (
                "pupil_first_name,pupil_last_name,year_group,contact_name,relationship,mobile\n"
                f"Sam,Jones,Year 6,Mary Jones,mother,{MARY}\n"
            ).encode(),
        )
        db.session.commit()
    page = scenario.client.get(inbox_url(scenario, "/3")).get_data(as_text=True)
    assert "hello" in page and "no longer on this trip" in page


def test_blocked_and_failed_texts_have_plain_reasons(scenario, leader, app):
    send(scenario, 1, "See you at 4")
    scenario.send_all()
    (reply,) = scenario.outbound(kind=Kind.TO_CONTACT)
    scenario.status(reply.twilio_sid, "undelivered", 30005)
    (shown,) = scenario.client.get(inbox_url(scenario, "/1.json")).get_json()["messages"]
    assert shown["state"] == "failed"
    assert shown["reason"] == "unknown number: it may no longer exist"
    assert shown["retry_url"] == f"/trips/{scenario.trip_id}/messages/{reply.id}/retry"
    with app.app_context():
        assert db.session.get(Message, reply.id).error_code == 30005


def messages_json(scenario, code: int) -> dict[int, dict]:
    data = scenario.client.get(inbox_url(scenario, f"/{code}.json")).get_json()
    return {m["id"]: m for m in data["messages"]}


def test_a_failed_reply_sent_again_links_to_it_and_keeps_what_it_answered(scenario, leader, app):
    scenario.text(MARY, "Are we on time?")
    scenario.text(SCHOOL_PHONE, "#1 Yes, back at 15:30")
    command = next(m for m in scenario.inbound() if m.kind == Kind.COMMAND)
    scenario.send_all()
    (reply,) = scenario.outbound(kind=Kind.TO_CONTACT)
    assert reply.caused_by_id == command.id
    scenario.status(reply.twilio_sid, "undelivered", 30003)
    shown = messages_json(scenario, 1)[reply.id]
    assert shown["retry_url"] and shown["note"] == ""

    response = scenario.client.post_form(shown["retry_url"])
    assert response.status_code == 303
    failed, again = scenario.outbound(kind=Kind.TO_CONTACT)
    assert failed.id == reply.id and failed.retry_of_id is None
    # The text sent again repeats the failed one, and still answers the #1 command.
    assert (again.retry_of_id, again.caused_by_id) == (reply.id, command.id)
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "message.retried"))
        assert (event.subject_id, event.data["retry_of"]) == (str(again.id), reply.id)

    shown = messages_json(scenario, 1)
    assert shown[reply.id]["note"] == "Sent again." and shown[reply.id]["retry_url"] is None
    assert shown[again.id]["note"] == "" and shown[again.id]["state"] == "queued"
    # Mary's text still counts only its forward to the trip phone.
    assert shown[next(m.id for m in scenario.inbound() if m.from_number == MARY)]["note"] == (
        "Passed to 1 staff phone; delivered to 0."
    )


def test_a_blocked_attempt_to_send_again_leaves_the_failed_text_to_send_again(
    scenario, leader, app
):
    """An attempt the content rules block was never sent: the failed text is not "sent
    again", and may be sent again once the words are allowed."""
    send(scenario, 1, "Ring the office on 01234 567890 if worried")  # OFFICE_PHONE: allowed
    scenario.send_all()
    (reply,) = scenario.outbound(kind=Kind.TO_CONTACT)
    scenario.status(reply.twilio_sid, "failed", 30008)
    office = app.config["OFFICE_PHONE"]
    app.config["OFFICE_PHONE"] = "+441234567899"  # the office's number changed meanwhile
    retry_url = messages_json(scenario, 1)[reply.id]["retry_url"]
    page = scenario.client.get(scenario.client.post_form(retry_url).location)
    assert "Not sent again: not sent: the message contains" in page.get_data(as_text=True)
    _, blocked = scenario.outbound(kind=Kind.TO_CONTACT)
    assert blocked.status == Status.BLOCKED
    assert (blocked.retry_of_id, blocked.caused_by_id) == (None, None)
    with app.app_context():
        event = db.session.scalar(select(AuditEvent).where(AuditEvent.action == "message.blocked"))
        assert (event.subject_id, event.data["retry_of"]) == (str(blocked.id), reply.id)
    shown = messages_json(scenario, 1)[reply.id]
    assert shown["note"] == "" and shown["retry_url"] == retry_url

    app.config["OFFICE_PHONE"] = office
    assert scenario.client.post_form(retry_url).status_code == 303
    again = scenario.outbound(kind=Kind.TO_CONTACT)[-1]
    assert (again.status, again.retry_of_id) == (Status.PENDING, reply.id)
    assert messages_json(scenario, 1)[reply.id]["note"] == "Sent again."


def test_a_staff_number_however_written_never_leaves_by_the_web(scenario, leader):
    from tests.relay.test_properties import STAFF_PERSONAL, WAYS

    for way in WAYS:
        for number in (STAFF_PERSONAL[0], SCHOOL_PHONE):
            body = f"Ring me on {way(number)} if worried"
            assert send(scenario, 1, body).status_code == 422, body
            broadcast = scenario.client.post_form(
                f"/trips/{scenario.trip_id}/broadcast", {"body": body}
            )
            assert broadcast.status_code == 422, body
    sent = scenario.outbound()
    assert len(sent) == 4 * len(WAYS)
    assert all(m.status == Status.BLOCKED for m in sent)

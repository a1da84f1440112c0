"""Every case of the design's "The relay", through the signed webhook."""

from datetime import timedelta

import pytest

from tests.relay.scenario import SCHOOL_PHONE, SCHOOL_PHONE_2, TRIP_NUMBER, e164
from tripcomms.relay.models import Kind, Status

MARY, TOM, ANN = e164(1), e164(2), e164(3)


def test_parent_text_goes_to_every_endpoint_with_code_and_hint(scenario):
    scenario.give_phone(SCHOOL_PHONE_2, scenario.helper, "Trip phone 2")
    scenario.text(MARY, "Has the coach left?")
    forwards = scenario.outbound(kind=Kind.FORWARD)
    assert sorted(m.to_number for m in forwards) == [SCHOOL_PHONE, SCHOOL_PHONE_2]
    assert {m.from_number for m in forwards} == {TRIP_NUMBER}
    assert forwards[0].body == (
        "#1 Mary Jones (Sam J.): Has the coach left?\nReply: #1 your message"
    )
    inbound = scenario.inbound()[0]
    assert inbound.kind == Kind.FROM_CONTACT and inbound.trip_id == scenario.trip_id
    assert all(m.caused_by_id == inbound.id for m in forwards)


def test_hint_stops_once_the_endpoint_has_used_codes(scenario):
    scenario.text(SCHOOL_PHONE, "#1 Yes, 10 minutes ago")
    scenario.text(MARY, "Thanks!")
    assert scenario.to(SCHOOL_PHONE)[-1] == "#1 Mary Jones (Sam J.): Thanks!"


def test_leader_replies_by_code_from_the_trip_number(scenario):
    scenario.give_phone(SCHOOL_PHONE_2, scenario.helper, "Trip phone 2")
    scenario.text(SCHOOL_PHONE, "#1 We are at the museum")
    reply = scenario.outbound(kind=Kind.TO_CONTACT)
    assert [(m.to_number, m.from_number, m.body) for m in reply] == [
        (MARY, TRIP_NUMBER, "We are at the museum")
    ]
    assert scenario.outbound(kind=Kind.RECEIPT)[0].body == "Sent to #1 Mary Jones."
    assert scenario.outbound(kind=Kind.COPY)[0].body == (
        "Liam Leader to #1 Mary Jones: We are at the museum"
    )
    assert scenario.outbound(kind=Kind.COPY)[0].to_number == SCHOOL_PHONE_2


@pytest.mark.parametrize("written", ["#1 hi", "# 1 hi", "#1: hi", "  #1   hi", "#01 hi"])
def test_code_commands_tolerate_spacing(scenario, written):
    scenario.text(SCHOOL_PHONE, written)
    assert [m.body for m in scenario.outbound(kind=Kind.TO_CONTACT)] == ["hi"]


def test_all_reaches_every_parent_who_can_receive(scenario):
    scenario.text(ANN, "STOP")
    scenario.text(SCHOOL_PHONE, "all Back at 15:30")
    sent = scenario.outbound(kind=Kind.BROADCAST)
    assert sorted(m.to_number for m in sent) == [MARY, TOM]
    assert scenario.outbound(kind=Kind.RECEIPT)[-1].body == "Sent to 2; 1 opted out."


def test_list_and_help(scenario):
    scenario.text(SCHOOL_PHONE, "list")
    assert scenario.to(SCHOOL_PHONE)[-1] == (
        "#1 Mary Jones (Sam J.)\n#2 Tom Jones (Sam J.)\n#3 Ann Smith (Ella S.)"
    )
    scenario.text(SCHOOL_PHONE, "HELP")
    assert scenario.to(SCHOOL_PHONE)[-1].startswith("To text a parent: #12 your message.")


def test_anything_else_from_an_endpoint_gets_help_and_reaches_no_parent(scenario):
    scenario.text(SCHOOL_PHONE, "Running late, sorry")
    assert scenario.to(SCHOOL_PHONE)[-1].startswith("Not sent to anyone. To text a parent")
    assert scenario.outbound(kind=Kind.TO_CONTACT) == []
    assert scenario.outbound(kind=Kind.BROADCAST) == []


@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("#99 hello", "Not sent: there is no #99 on this trip; LIST shows the codes."),
        ("#1", "Nothing to send: write #1 then your message."),
        ("#1   ", "Nothing to send: write #1 then your message."),
        ("ALL", "Nothing to send: write ALL then your message."),
        ("#1 " + "x" * 1601, "Not sent: 1,604 characters; the limit is 1,600."),
    ],
)
def test_bad_commands_get_a_clear_reply(scenario, command, reply):
    scenario.text(SCHOOL_PHONE, command)
    assert scenario.to(SCHOOL_PHONE)[-1] == reply
    assert scenario.outbound(kind=Kind.TO_CONTACT) == []


def test_no_contact_parent_cannot_be_texted(scenario):
    scenario.import_roster(
        [
            f"Sam,Jones,Year 6,Mary Jones,mother,{e164(1)},no",
            f"Sam,Jones,Year 6,Tom Jones,father,{e164(2)},yes",
            f"Ella,Smith,Year 5,Ann Smith,carer,{e164(3)},no",
        ],
        header="pupil_first_name,pupil_last_name,year_group,contact_name,relationship,mobile,"
        "no_contact",
    )
    scenario.text(SCHOOL_PHONE, "#2 hello")
    assert scenario.to(SCHOOL_PHONE)[-1] == (
        "Not sent: #2 Tom Jones may not receive trip messages."
    )
    scenario.text(SCHOOL_PHONE, "ALL Home at 4")
    assert sorted(m.to_number for m in scenario.outbound(kind=Kind.BROADCAST)) == [MARY, ANN]
    assert scenario.to(SCHOOL_PHONE)[-1] == "Sent to 2; 1 no contact."


def test_opted_out_parent_is_refused_and_start_opts_back_in(scenario):
    scenario.text(MARY, "stop")
    assert scenario.to(SCHOOL_PHONE)[-1] == (
        "#1 Mary Jones (Sam J.) has opted out of texts from this trip number (STOP)."
    )
    assert scenario.to(MARY) == []  # Twilio confirms STOP itself
    scenario.text(SCHOOL_PHONE, "#1 hello")
    assert scenario.to(SCHOOL_PHONE)[-1] == (
        "Not sent: #1 Mary Jones has opted out of texts (STOP)."
    )
    scenario.text(MARY, "START")
    scenario.text(SCHOOL_PHONE, "#1 hello")
    assert scenario.to(MARY) == ["hello"]


def test_help_keyword_from_a_parent_gets_the_help_reply(scenario):
    scenario.text(MARY, "help")
    reply = scenario.outbound(kind=Kind.KEYWORD_REPLY)
    assert reply[0].to_number == MARY and reply[0].from_number == TRIP_NUMBER
    assert "this number reaches the staff on Science Museum" in reply[0].body
    assert scenario.outbound(kind=Kind.FORWARD) == []


def test_unapproved_staff_personal_number_is_not_relayed(scenario):
    personal = e164(900)
    scenario.text(personal, "#1 this is Liam on my own phone")
    inbound = scenario.inbound()[-1]
    assert inbound.kind == Kind.FROM_STAFF_UNAPPROVED
    assert inbound.staff_id == scenario.leader.id
    assert scenario.outbound(kind=Kind.TO_CONTACT) == []
    assert "ask the Headteacher for approval" in scenario.to(personal)[0]


def test_pupil_number_is_refused_and_queued_for_the_office(scenario):
    scenario.import_roster(
        [
            f"Sam,Jones,Year 6,Mary Jones,mother,{e164(1)},",
            f"Sam,Jones,Year 6,Tom Jones,father,{e164(2)},",
            f"Ella,Smith,Year 5,Ann Smith,carer,{e164(3)},{e164(40)}",
        ],
        header="pupil_first_name,pupil_last_name,year_group,contact_name,relationship,mobile,"
        "pupil_mobile",
    )
    scenario.text(e164(40), "can u tell mum im ok")
    inbound = scenario.inbound()[-1]
    assert (inbound.kind, inbound.needs_review, inbound.flagged) == (
        Kind.FROM_PUPIL,
        True,
        "pupil",
    )
    assert scenario.outbound(kind=Kind.FORWARD) == []
    assert "This number is for parents and carers" in scenario.to(e164(40))[0]


def test_unknown_number_gets_one_auto_reply_an_hour(scenario):
    stranger = e164(500)
    scenario.text(stranger, "Who is this?")
    scenario.text(stranger, "Hello??")
    replies = scenario.to(stranger)
    assert len(replies) == 1
    assert "We do not recognise your number" in replies[0]
    assert "+441234567890" in replies[0]  # the office number
    assert [m.kind for m in scenario.inbound()] == [Kind.FROM_UNKNOWN, Kind.FROM_UNKNOWN]
    assert scenario.outbound(kind=Kind.FORWARD) == []


def test_no_trip_on_the_number_gets_the_office_reply(scenario, app):
    scenario.text(MARY, "Hello", to="+441234000099")
    inbound = scenario.inbound()[-1]
    assert inbound.kind == Kind.NO_TRIP and inbound.needs_review
    reply = scenario.outbound(to_number=MARY)[0]
    assert reply.from_number == "+441234000099"
    assert "not in use at the moment" in reply.body


def test_trip_is_unreachable_outside_its_window(scenario, app):
    from tripcomms.extensions import db
    from tripcomms.trips.models import Trip
    from tripcomms.types import utcnow

    with app.app_context():
        trip = db.session.get(Trip, scenario.trip_id)
        trip.starts_at = utcnow() - timedelta(days=3)
        trip.ends_at = utcnow() - timedelta(days=2)  # grace of 24 h has passed
        db.session.commit()
    scenario.text(MARY, "Late thanks")
    assert scenario.inbound()[-1].kind == Kind.NO_TRIP
    assert scenario.outbound(kind=Kind.FORWARD) == []


def test_media_is_never_forwarded_and_is_flagged(scenario):
    scenario.text(MARY, "Look at this", media=("image/jpeg", "image/png"))
    forward = scenario.outbound(kind=Kind.FORWARD)[0]
    assert forward.body.startswith(
        "#1 Mary Jones (Sam J.): Look at this [2 pictures not forwarded]"
    )
    assert "https://" not in forward.body
    inbound = scenario.inbound()[0]
    assert (inbound.num_media, inbound.media_types, inbound.flagged) == (
        2,
        ["image/jpeg", "image/png"],
        "media",
    )


def test_a_parent_text_over_1600_characters_is_refused_with_a_reply(scenario):
    scenario.text(MARY, "x" * 2000)
    assert scenario.outbound(kind=Kind.FORWARD) == []
    assert scenario.to(MARY)[0].startswith(
        "Your message was too long to pass on (2,000 characters; the limit is 1,600)."
    )
    assert scenario.inbound()[0].body == "x" * 2000  # kept in full


def test_unicode_and_emoji_are_relayed_intact(scenario):
    scenario.text(MARY, "Zoë says 👋 — très bien")
    assert scenario.to(SCHOOL_PHONE)[0].startswith(
        "#1 Mary Jones (Sam J.): Zoë says 👋 — très bien"
    )
    scenario.text(SCHOOL_PHONE, "#1 Merci 😊")
    assert scenario.to(MARY) == ["Merci 😊"]


def test_an_endpoint_whose_loan_was_returned_is_no_longer_an_endpoint(scenario):
    scenario.take_phone(SCHOOL_PHONE)
    scenario.text(SCHOOL_PHONE, "#1 hello")
    assert scenario.outbound(kind=Kind.TO_CONTACT) == []
    assert scenario.inbound()[-1].kind == Kind.FROM_UNKNOWN


@pytest.mark.parametrize(
    "body",
    [
        "#1 Call me on 07911 123456",
        "#1 my mobile is (07911) 123-456",
        "#1 ring +44 7911 123 456",
    ],
)
def test_a_staff_personal_number_never_reaches_a_parent(scenario, factory, body):
    factory.user("leader", personal_numbers=("07911 123456",))
    scenario.text(SCHOOL_PHONE, body)
    assert scenario.to(MARY) == []
    blocked = scenario.outbound(status=Status.BLOCKED)
    assert len(blocked) == 1 and "staff member's personal number (policy 50)" in blocked[0].note
    assert scenario.to(SCHOOL_PHONE)[-1] == (
        "Not sent: the message contains a staff member's personal number (policy 50). "
        "Nothing reached any parent."
    )


def test_everything_is_written_before_anything_is_sent(scenario):
    scenario.text(MARY, "hello")
    assert {m.status for m in scenario.outbound()} == {Status.PENDING}
    assert scenario.gateway.sent == []
    assert scenario.send_all() == 1
    assert scenario.gateway.sent[0][0] == SCHOOL_PHONE


@pytest.mark.parametrize("written", ["07911 123456", "+44 7911 123456", "(07911) 123-456"])
def test_roster_numbers_in_any_form_match_the_webhook_sender(scenario, written):
    scenario.import_roster([f'Zara,Khan,Year 4,Nadia Khan,mother,"{written}"'])
    scenario.text("+447911123456", "Is Zara OK?")
    assert scenario.inbound()[-1].kind == Kind.FROM_CONTACT
    assert scenario.to(SCHOOL_PHONE)[-1].startswith("#4 Nadia Khan (Zara K.): Is Zara OK?")


def test_copies_to_other_phones_can_be_switched_off(scenario, app):
    app.config["RELAY_COPY_TO_ENDPOINTS"] = False
    scenario.give_phone(SCHOOL_PHONE_2, scenario.helper, "Trip phone 2")
    scenario.text(SCHOOL_PHONE, "#1 hello")
    assert scenario.outbound(kind=Kind.COPY) == []

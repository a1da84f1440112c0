"""The web inbox in Chromium, over real HTTP, with the simulator and the outbox sender running
in the app's process: a parent texts, the leader answers from the inbox; a broadcast to the
demo trip reaches everyone, one failure is sent again."""

import re

import pytest
from playwright.sync_api import expect
from sqlalchemy import func, select

from tests.helpers import PASSWORD
from tests.simulator.fixtures import live_sim, sim
from tests.texting_trip import MARY, SCHOOL_PHONE, texting_trip
from tripcomms.extensions import db
from tripcomms.relay.models import Broadcast, Kind, Message
from tripcomms.relay.outbox import stop_in_process

__all__ = ["live_sim", "sim"]


@pytest.fixture
def outbox(app, live_sim):
    """The outbox sender in the app's process, started by the first request, as in the demo."""
    app.config.update(SEND_IN_PROCESS=True, SENDER_POLL_SECONDS=0.1, INBOX_POLL_SECONDS=0.5)
    yield
    stop_in_process(app)


def sign_in(page, base: str, email: str, password: str = PASSWORD) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=re.compile("^Hello"))).to_be_visible()


def fits(page, width: int = 360) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= width


def stays_loaded(page) -> None:
    """Mark the document, so that a later check can tell it was never reloaded."""
    page.evaluate("window.notReloaded = true")


def was_not_reloaded(page) -> bool:
    return page.evaluate("window.notReloaded === true")


def test_a_parent_texts_and_the_leader_replies_from_the_inbox(
    app, page, factory, sim, live_sim, outbox
):
    trip = texting_trip(app, factory, sim)
    sign_in(page, live_sim, trip.leader.email)
    page.goto(f"{live_sim}/trips/{trip.trip_id}")
    page.get_by_role("link", name="Open the inbox").click()
    expect(page.get_by_role("heading", name="Inbox: Science Museum")).to_be_visible()
    expect(page.get_by_text("No texts yet.")).to_be_visible()
    stays_loaded(page)
    assert fits(page)

    # Another tab: Mary's phone texts the trip number (with something that looks like code).
    phone = page.context.new_page()
    phone.goto(f"{live_sim}/sim/phones")
    phone.get_by_role("link", name="Mary Jones").click()
    phone.get_by_label("Message").fill('Is the coach on time? <img src=x onerror="window.pwned=1">')
    phone.get_by_role("button", name="Send text").click()
    expect(phone.get_by_text("Sent.")).to_be_visible()
    stays_loaded(phone)
    assert fits(phone)

    # The inbox shows it without a reload; the leader's school phone has it from the trip.
    page.bring_to_front()
    thread = page.locator("li.thread", has_text="#1 Mary Jones")
    expect(thread).to_contain_text("1 unread")
    expect(thread).to_contain_text("Waiting for a reply since")
    assert was_not_reloaded(page)
    expect(page.locator("#inbox-status")).to_contain_text("New text from Mary Jones.")
    leader_phone = page.context.new_page()
    leader_phone.goto(f"{live_sim}/sim/phones/phone-1")
    expect(leader_phone.locator("li.sms")).to_contain_text("#1 Mary Jones (Sam J.): Is the coach")
    expect(leader_phone.locator("li.sms .sms-meta").first).to_contain_text(
        "From 07480 000001 (trip number: Science Museum)"
    )
    leader_phone.close()

    # The leader opens the thread: the parent's text is text, never run.
    thread.get_by_role("link").click()
    expect(page.get_by_role("heading", name="#1 Mary Jones")).to_be_visible()
    expect(page.locator("li.msg-parent .msg-body")).to_have_text(
        'Is the coach on time? <img src=x onerror="window.pwned=1">'
    )
    assert page.evaluate("window.pwned") is None

    # A double click on send sends one text.
    page.get_by_label("Your message").fill("Yes, we are on time. Back at 3:30.")
    page.get_by_role("button", name="Send to #1 Mary Jones").dblclick()
    expect(page.get_by_text("Sent to #1 Mary Jones.")).to_be_visible()
    stays_loaded(page)
    reply = page.locator("li.msg-staff", has_text="Yes, we are on time.")
    expect(reply).to_have_count(1)
    expect(reply).to_contain_text("Liam Leader on the web")

    # Mary's phone shows the reply from the trip number, without a reload.
    phone.bring_to_front()
    answer = phone.locator("li.sms-received", has_text="Yes, we are on time. Back at 3:30.")
    expect(answer).to_be_visible()
    expect(answer.locator(".sms-meta")).to_contain_text(
        "From 07480 000001 (trip number: Science Museum)"
    )
    assert was_not_reloaded(phone)

    # The thread shows it delivered, without a reload.
    page.bring_to_front()
    expect(reply.locator(".msg-status")).to_have_text("Delivered")
    assert was_not_reloaded(page)
    assert fits(page)
    with app.app_context():
        replies = db.session.scalars(select(Message).where(Message.kind == Kind.TO_CONTACT)).all()
        assert [(m.to_number, m.via) for m in replies] == [(MARY, "web")]
    assert sim.duplicate_deliveries() == {}
    assert all(t.from_ != SCHOOL_PHONE for t in sim.texts_for(MARY))


def test_a_broadcast_to_the_demo_trip_reaches_everyone_and_a_failure_is_sent_again(
    app, browser, sim, live_sim, outbox
):
    from tripcomms.demo import DEMO_PASSWORD, DEMO_TRIP_NUMBERS, seed
    from tripcomms.relay.inbox import people
    from tripcomms.trips.models import Trip, TripState

    with app.app_context():
        seed(app)
        trip = next(t for t in db.session.scalars(select(Trip)) if t.state == TripState.IN_PROGRESS)
        trip_id = trip.id
        everyone = list(people(trip).values())
        unreachable = [p for p in everyone if p.can_receive][3]
        failing = (unreachable.code, unreachable.name, unreachable.contact.mobile)
        total = sum(1 for p in everyone if p.can_receive)
    for number in DEMO_TRIP_NUMBERS:
        sim.add_number(number)
    sim.make_undeliverable(failing[2], 30003)

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(15_000)
    sign_in(page, live_sim, "leader@demo.school", DEMO_PASSWORD)
    page.goto(f"{live_sim}/trips/{trip_id}")
    page.get_by_role("link", name="Text all parents").click()

    # A template fills the box with its placeholder selected: typing replaces it.
    page.get_by_label("Start from a template").select_option(label="Arrived safely")
    page.get_by_role("button", name="Use template").click()
    page.keyboard.type("the Science Museum")
    expect(page.get_by_label("Message to every parent and carer on the trip")).to_have_value(
        "We have arrived safely at the Science Museum. All well!"
    )
    page.get_by_role("button", name="Check before sending").click()
    expect(page.get_by_role("heading", name=f"Send this to {total} parents and carers?"))
    expect(page.get_by_text("no contact; the office decides")).to_be_visible()
    page.get_by_role("button", name=f"Send to {total}").click()

    # The bar fills to every recipient, one of them not delivered, with the reason.
    bar = page.locator("#progress-bar")
    summary = page.locator("#progress-summary")
    stays_loaded(page)
    expect(summary).to_have_text(
        f"{total} of {total} done: {total - 1} delivered, 1 not delivered, 0 on the way.",
        timeout=30_000,
    )
    assert bar.evaluate("b => [b.value, b.max]") == [total, total]
    assert was_not_reloaded(page)
    failed = page.locator("li.recipient.state-failed")
    expect(failed).to_have_count(1)
    expect(failed).to_contain_text(f"#{failing[0]} {failing[1]}")
    expect(failed).to_contain_text("Not delivered: unreachable: the phone is off or out of signal")

    # The phone is back in signal; send it again.
    sim.reset_faults()
    failed.get_by_role("button", name=re.compile("^Send again")).click()
    expect(page.get_by_text(f"Sending again to #{failing[0]} {failing[1]}.")).to_be_visible()
    expect(summary).to_have_text(
        f"{total} of {total} done: {total} delivered, 0 not delivered, 0 on the way.",
        timeout=30_000,
    )
    assert bar.evaluate("b => [b.value, b.max]") == [total, total]
    again = page.locator("li.recipient", has_text=f"#{failing[0]} {failing[1]}")
    expect(again).to_contain_text("Delivered (sent again)")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Broadcast)) == 1
        to_failing = db.session.scalars(
            select(Message.status).where(
                Message.kind == Kind.BROADCAST, Message.to_number == failing[2]
            )
        ).all()
        assert to_failing == ["undelivered", "delivered"]

    # At 360 px the page still fits.
    page.set_viewport_size({"width": 360, "height": 740})
    assert fits(page)
    page.close()

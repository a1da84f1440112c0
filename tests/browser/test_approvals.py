"""A leader asks to use her own phone, the Headteacher approves in the browser, the phone
relays through the simulator (the parent sees only the trip number), and after the Headteacher
revokes it the phone is refused."""

import re

import pytest
from playwright.sync_api import expect

from tests.helpers import FACTORY, PASSWORD
from tests.relay.scenario import e164
from tests.simulator.fixtures import live_sim, sim
from tests.trips.rosters import mobile, roster_csv
from tripcomms.extensions import db
from tripcomms.relay import numbers as number_ops
from tripcomms.relay.outbox import OutboxSender
from tripcomms.trips import operations as trip_ops
from tripcomms.trips.models import Trip

__all__ = ["live_sim", "sim"]

TRIP_NUMBER = "+441234000001"
NOTIFY = "+447401234599"
LEADER_OWN = e164(900)
HEAD_OWN = e164(950)
MARY = e164(1)


@pytest.fixture
def app_config(app_config):
    return {**app_config, "NOTIFY_FROM": NOTIFY}


def sign_in(page, base: str, email: str) -> None:
    page.goto(base + "/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def received(sim, number: str) -> list[tuple[str, str]]:
    sim.wait_idle()
    return [(t.from_, t.body) for t in sim.texts_for(number) if t.direction == "received"]


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= 360


def test_ask_approve_relay_and_revoke(app, browser, page, factory, sim, live_sim):
    lena = factory.user(
        "leader", name="Lena Leader", email="lena@school.test", personal_numbers=(mobile(900),)
    )
    factory.user(
        "head", name="Helen Head", email="helen@school.test", personal_numbers=(mobile(950),)
    )
    helper = factory.user("leader", name="Hana Helper")
    trip_id = factory.trip(lena, title="Science Museum", staff=(helper,))
    with app.app_context():
        trip = db.session.get(Trip, trip_id)
        number_ops.add_number(FACTORY, TRIP_NUMBER)
        number_ops.allocate_number(FACTORY, trip)
        trip_ops.import_roster(
            FACTORY, trip, roster_csv([f"Sam,Jones,Year 6,Mary Jones,mother,{mobile(1)}"])
        )
        db.session.commit()
    sim.add_number(TRIP_NUMBER)
    sim.add_number(NOTIFY)
    outbox = OutboxSender(app)  # the real gateway, pointed at the simulator

    # The leader asks, in the browser, from the trip page.
    sign_in(page, live_sim, "lena@school.test")
    page.goto(f"{live_sim}/trips/{trip_id}")
    page.get_by_role("link", name="Ask to use my own phone").click()
    expect(page.get_by_role("heading", name="Use your own phone on Science Museum")).to_be_visible()
    expect(page.locator("#school-phones")).to_contain_text("No school phone is free")
    page.get_by_label("Why a school phone will not do").fill("All school phones are at the farm")
    page.get_by_role("button", name="Ask the Headteacher").click()
    expect(
        page.get_by_text(re.compile(r"Request \d+ has gone to the Headteacher\."))
    ).to_be_visible()
    expect(page.locator("#approval-state")).to_contain_text("Waiting for the Headteacher")
    assert fits_the_screen(page)
    request_id = int(re.search(r"/approvals/(\d+)", page.url).group(1))

    # The Headteacher's handset is asked by text from the notification number.
    assert outbox.run_once() == 1
    assert received(sim, HEAD_OWN) == [
        (
            NOTIFY,
            "Trip Science Museum: Lena Leader asks to use a personal phone (All school phones "
            f"are at the farm). Reply APPROVE {request_id} or DENY {request_id} <reason>.",
        )
    ]

    # The Headteacher approves in the browser.
    head = browser.new_context(viewport={"width": 360, "height": 740})
    head_page = head.new_page()
    head_page.set_default_timeout(10_000)
    sign_in(head_page, live_sim, "helen@school.test")
    expect(head_page.locator("#approvals-waiting")).to_have_text("1 waiting")
    head_page.get_by_role("link", name="Phone approvals").click()
    head_page.get_by_role("link", name=f"Decide request {request_id}").click()
    expect(head_page.get_by_role("heading", name=f"Decide request {request_id}")).to_be_visible()
    head_page.get_by_label("Conditions (optional)").fill("Until the coach is back")
    head_page.get_by_role("button", name="Approve").click()
    expect(
        head_page.get_by_text("Approved: Lena Leader's own phone for Science Museum.")
    ).to_be_visible()
    expect(head_page.locator("#approval-state")).to_contain_text("in force now")
    assert fits_the_screen(head_page)
    outbox.run_once()
    assert "approved your own phone" in received(sim, LEADER_OWN)[-1][1]

    # A parent texts; the leader's own handset gets it from the trip number and answers.
    sim.send_from_handset(MARY, TRIP_NUMBER, "Is Sam warm enough?")
    outbox.run_once()
    assert received(sim, LEADER_OWN)[-1] == (
        TRIP_NUMBER,
        "#1 Mary Jones (Sam J.): Is Sam warm enough?\nReply: #1 your message",
    )
    sim.send_from_handset(LEADER_OWN, TRIP_NUMBER, "#1 Yes, coats on and all fine")
    outbox.run_once()
    assert received(sim, MARY) == [(TRIP_NUMBER, "Yes, coats on and all fine")]
    assert received(sim, LEADER_OWN)[-1] == (TRIP_NUMBER, "Sent to #1 Mary Jones.")

    # The trip page shows the phone in force to the leader.
    page.goto(f"{live_sim}/trips/{trip_id}")
    expect(page.locator("#personal-in-force")).to_contain_text("Lena Leader's own phone")

    # The Headteacher revokes; the next text from the personal handset is refused.
    head_page.get_by_label("Why it is withdrawn").fill("A school phone is back")
    head_page.get_by_role("button", name="Revoke the approval").click()
    expect(head_page.get_by_text(re.compile("Revoked: texts from Lena Leader"))).to_be_visible()
    expect(head_page.locator("#approval-state")).to_contain_text("Revoked")
    outbox.run_once()
    sim.send_from_handset(LEADER_OWN, TRIP_NUMBER, "#1 Back at 4")
    outbox.run_once()
    assert received(sim, LEADER_OWN)[-1][0] == TRIP_NUMBER
    assert received(sim, LEADER_OWN)[-1][1].startswith(
        "Not sent: this phone is not approved for this trip"
    )
    # Mary only ever heard from the trip number, and never the leader's number.
    assert received(sim, MARY) == [(TRIP_NUMBER, "Yes, coats on and all fine")]
    assert all(LEADER_OWN[3:] not in body.replace(" ", "") for _, body in received(sim, MARY))
    head.close()

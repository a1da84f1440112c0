"""The office books phones for a trip, issues one to the leader and takes it back damaged."""

import re

from playwright.sync_api import expect

from tests.helpers import FACTORY, PASSWORD
from tripcomms.extensions import db
from tripcomms.phones import operations as ops


def fits_the_screen(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth") <= 360


def test_book_issue_and_take_back_damaged(app, page, live_server, factory):
    factory.user("office", name="Olive Office", email="olive@school.test")
    leader = factory.user("leader", name="Liam Leader", email="liam@school.test")
    trip = factory.trip(leader, title="Year 6 Museum")
    with app.app_context():
        for n in (1, 2, 3):
            ops.add_phone(FACTORY, label=f"Trip phone {n}", number=f"07400 12340{n}")
        db.session.commit()

    page.goto(live_server + "/login")
    page.get_by_label("Email").fill("olive@school.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Phones", exact=True).click()
    expect(page.get_by_role("heading", name="School phones")).to_be_visible()
    assert fits_the_screen(page)

    # Book two phones for the trip.
    page.goto(f"{live_server}/trips/{trip}/phones")
    expect(page.get_by_role("heading", name="Phones for Year 6 Museum")).to_be_visible()
    page.get_by_label("Trip phone 1").check()
    page.get_by_label("Trip phone 2").check()
    page.get_by_role("button", name="Book").click()
    expect(page.get_by_text("Booked Trip phone 1, Trip phone 2 for Year 6 Museum.")).to_be_visible()
    booked = page.get_by_role("table", name="Phones booked for Year 6 Museum")
    expect(booked.get_by_role("row")).to_have_count(3)  # a header and two phones
    assert fits_the_screen(page)

    # Issue one of them to the leader.
    page.get_by_label("Phone", exact=True).select_option(
        label="Trip phone 1 (booked for this trip)"
    )
    expect(page.get_by_label("Issued to")).to_have_value(str(leader.id))
    page.get_by_label("Condition when issued (optional)").fill("Small scratch on the back")
    page.get_by_role("button", name="Issue phone").click()
    expect(
        page.get_by_text(re.compile(r"Trip phone 1 issued to Liam Leader, due back"))
    ).to_be_visible()
    on_loan = page.get_by_role("table", name="Phones on loan for Year 6 Museum")
    expect(on_loan).to_contain_text("Liam Leader")
    expect(booked.get_by_role("row")).to_have_count(2)  # the booking of phone 1 is fulfilled

    # Take it back damaged, with the checklist.
    page.get_by_role("link", name="Take back Trip phone 1").click()
    expect(page.get_by_role("heading", name="Take back Trip phone 1")).to_be_visible()
    page.get_by_label("Damaged: goes for repair").check()
    page.get_by_label("The charger came back").check()
    page.get_by_label(re.compile("Texts deleted from the handset")).check()
    page.get_by_label("Notes (optional)").fill("Screen cracked at the museum")
    page.get_by_role("button", name="Take back").click()
    expect(
        page.get_by_text("Trip phone 1 is back from Liam Leader; it is now in repair.")
    ).to_be_visible()
    expect(page.get_by_role("table", name="Phones returned from Year 6 Museum")).to_contain_text(
        "damaged"
    )

    # The phone now shows "repair" and its history, newest first.
    page.get_by_role("link", name="Phones", exact=True).click()
    page.get_by_role("link", name="Trip phone 1").click()
    expect(page.locator("#phone-status")).to_have_text("In repair")
    history = page.get_by_role("table", name="Status history of Trip phone 1")
    rows = history.get_by_role("row")
    expect(rows).to_have_count(4)
    expect(rows.nth(1)).to_contain_text("On loan → In repair")
    expect(rows.nth(1)).to_contain_text("returned (Year 6 Museum): Screen cracked at the museum")
    expect(rows.nth(2)).to_contain_text("Available → On loan")
    expect(rows.nth(3)).to_contain_text("added")
    loans = page.get_by_role("table", name="Loans of Trip phone 1")
    expect(loans).to_contain_text("damaged; charger back; texts deleted")
    assert fits_the_screen(page)

    # The four-week strip scrolls inside its table, not the page.
    page.goto(live_server + "/phones/calendar")
    expect(page.get_by_role("table", name=re.compile("Bookings and loans"))).to_be_visible()
    assert fits_the_screen(page)

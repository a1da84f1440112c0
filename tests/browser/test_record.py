"""An auditor searches the log, opens a message's record, downloads the search as CSV and
opens the trip report; a leader reports a concern; the safeguarding lead closes it."""

import csv
import re

from playwright.sync_api import expect

from tests.helpers import PASSWORD
from tests.record import ANN, MARY, SCHOOL_PHONE, rec, scenario

__all__ = ["rec", "scenario"]


def sign_in(page, live_server, user):
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill(user.email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name=f"Hello, {user.name}")).to_be_visible()


def sign_out(page, user):
    page.get_by_role("button", name=f"Sign out {user.name}").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()


def fits_the_screen(page) -> bool:
    wide = page.evaluate(
        """[...document.querySelectorAll('body *')]
        .filter(e => e.getBoundingClientRect().right > 361 && !e.closest('.table-wrap'))
        .map(e => e.tagName + '.' + e.className + ' ' + (e.textContent || '').slice(0, 40))"""
    )
    assert wide == [], wide
    return page.evaluate("document.documentElement.scrollWidth") <= 360


def test_audit_a_trip_and_handle_a_concern(page, live_server, rec, tmp_path):
    s = rec.s
    s.text(MARY, "Has the coach left yet?")
    s.text(ANN, "Ella is coach sick")
    s.text(SCHOOL_PHONE, "#1 The coach left at 9")

    # The auditor searches, opens a message, downloads the search and opens the report.
    sign_in(page, live_server, rec.auditor)
    page.get_by_role("link", name="Log", exact=True).click()
    expect(page.get_by_role("heading", name="Communication log")).to_be_visible()
    page.get_by_label("Words in the text").fill('coach "left')
    page.get_by_label("Direction").select_option(label="Received")
    page.get_by_role("button", name="Search").click()
    results = page.get_by_role("table", name="Messages, newest first")
    expect(results.get_by_role("row")).to_have_count(3)  # a header, Mary's text, the command
    assert fits_the_screen(page)
    results.get_by_role("row").filter(has_text="Has the coach left yet?").get_by_role(
        "link"
    ).click()
    expect(page.get_by_role("heading", name=re.compile(r"Message \d+: received"))).to_be_visible()
    expect(page.get_by_text(MARY).first).to_be_visible()  # the auditor sees numbers in full
    expect(page.get_by_role("heading", name="Status history")).to_be_visible()
    expect(page.get_by_role("heading", name="Related messages")).to_be_visible()
    assert fits_the_screen(page)

    page.go_back()
    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download these as CSV").click()
    saved = tmp_path / "log.csv"
    download_info.value.save_as(saved)
    with saved.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert [r["body"] for r in rows] == ["Has the coach left yet?", "#1 The coach left at 9"]
    assert rows[0]["from_number"] == MARY and rows[0]["time_local"]

    page.goto(f"{live_server}/trips/{s.trip_id}")
    page.get_by_role("link", name="Trip report").click()
    expect(
        page.get_by_role("heading", name="Communications report: Science Museum")
    ).to_be_visible()
    expect(page.get_by_role("img", name="Messages per hour")).to_be_visible()
    expect(page.get_by_role("cell", name="Ella is coach sick", exact=True)).to_be_visible()
    sign_out(page, rec.auditor)

    # A leader reports a concern about Ann's text.
    sign_in(page, live_server, s.leader)
    page.get_by_role("link", name="Log", exact=True).click()
    page.get_by_label("Words in the text").fill("sick")
    page.get_by_label("Direction").select_option(label="Received")
    page.get_by_role("button", name="Search").click()
    page.get_by_role("table", name="Messages, newest first").get_by_role("link").first.click()
    expect(page.get_by_text(ANN)).to_have_count(0)  # leaders never see parents' numbers
    page.get_by_role("link", name="Report a concern about this message").click()
    page.get_by_label("What kind of concern is it?").select_option(label="Safeguarding")
    page.get_by_label("What happened?").fill("Ella was upset on the coach; mum worried.")
    page.get_by_role("button", name="Report the concern").click()
    expect(page.get_by_text(re.compile(r"Concern #\d+ reported"))).to_be_visible()
    assert fits_the_screen(page)
    sign_out(page, s.leader)

    # The safeguarding lead investigates and closes it.
    sign_in(page, live_server, rec.dsl)
    page.get_by_role("link", name="Concerns", exact=True).click()
    page.get_by_role("link", name=re.compile(r"#\d+ Safeguarding")).click()
    expect(page.get_by_text("Ella was upset on the coach; mum worried.")).to_be_visible()
    page.get_by_label("Why").first.fill("Calling Mrs Smith this evening")
    page.get_by_role("button", name="Start investigating").click()
    expect(page.get_by_text("Marked as being investigated.")).to_be_visible()
    page.get_by_label("Outcome", exact=True).select_option(label="Advice or guidance given")
    page.get_by_label("Why").fill("Travel sickness; spoke to Mrs Smith, no further worry.")
    page.get_by_role("button", name="Close the concern").click()
    expect(page.get_by_text("Concern closed.")).to_be_visible()
    expect(page.locator(".facts")).to_contain_text("closed Advice or guidance given")
    assert fits_the_screen(page)

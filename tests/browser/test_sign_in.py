import re

from playwright.sync_api import expect

from tests.helpers import PASSWORD


def test_office_signs_in_sees_home_and_signs_out(page, live_server, factory):
    factory.user("office", name="Olive Office", email="olive@school.test")
    page.goto(live_server + "/")
    expect(page).to_have_url(re.compile(r"/login\?next=%2F$"))
    page.get_by_label("Email").fill("olive@school.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Hello, Olive Office")).to_be_visible()
    expect(page.locator(".roles")).to_contain_text("Office")
    # Usable at 360 px: nothing wider than the screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    page.get_by_role("button", name="Sign out Olive Office").click()
    expect(page.get_by_text("You are signed out.")).to_be_visible()
    page.goto(live_server + "/")
    expect(page).to_have_url(re.compile(r"/login"))


def test_wrong_password_shows_the_generic_message(page, live_server, factory):
    factory.user("office", email="olive@school.test")
    page.goto(live_server + "/login")
    page.get_by_label("Email").fill("olive@school.test")
    page.get_by_label("Password").fill("not my password")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_have_text(
        "That email and password do not match an active account."
    )

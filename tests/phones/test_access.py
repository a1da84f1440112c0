"""Who may reach the phone pages: the office and the head manage; a leader sees only their own
trips' phones page, read-only; everyone else gets 403 or 404."""

import pytest

from tests.phones.conftest import count
from tripcomms.phones.models import Booking, Loan, Phone

MANAGEMENT_GETS = [
    "/phones",
    "/phones/new",
    "/phones/import",
    "/phones/calendar",
    "/phones/{phone}",
    "/phones/{phone}/edit",
    "/loans",
    "/trips/{trip}/phones/loans/{loan}/return",
]
MANAGEMENT_POSTS = [
    ("/phones/new", {"label": "Mine", "number": "07400123488"}),
    ("/phones/import", {}),
    ("/phones/{phone}/edit", {"label": "Mine", "number": "07400123488"}),
    ("/phones/{phone}/status", {"status": "lost"}),
    ("/phones/{phone}/retire", {}),
    ("/trips/{trip}/phones/book", {"count": "1"}),
    ("/trips/{trip}/phones/bookings/{booking}/cancel", {}),
    ("/trips/{trip}/phones/issue", {"phone_id": "{spare}", "holder_id": "{leader}"}),
    ("/trips/{trip}/phones/loans/{loan}/return", {"condition": "lost"}),
]


@pytest.fixture
def world(factory, pool):
    leader = factory.user("leader", name="Liam Leader", email="liam@school.test")
    trip = factory.trip(leader, title="Year 6 Museum")
    phone = pool.phone("Trip phone 1")
    spare = pool.phone("Trip phone 2")
    loan = pool.issue(phone, trip, leader.id)
    [booking] = pool.book(trip, pool.phone("Trip phone 3"))
    return {
        "leader": leader,
        "ids": {
            "trip": trip,
            "phone": phone,
            "spare": spare,
            "loan": loan,
            "booking": booking,
            "leader": leader.id,
        },
    }


def fill(text: str, ids: dict) -> str:
    return text.format(**ids)


def test_a_leader_gets_403_on_every_management_route(app, client, world):
    client.login(world["leader"].email)
    ids = world["ids"]
    for url in MANAGEMENT_GETS:
        assert client.get(fill(url, ids)).status_code == 403, url
    before = [count(app, model) for model in (Phone, Loan, Booking)]
    for url, data in MANAGEMENT_POSTS:
        form = {key: fill(value, ids) for key, value in data.items()}
        assert client.post_form(fill(url, ids), form).status_code == 403, url
    assert [count(app, model) for model in (Phone, Loan, Booking)] == before


def test_a_leader_sees_their_own_trips_phones_read_only(client, world):
    client.login(world["leader"].email)
    page = client.get(f"/trips/{world['ids']['trip']}/phones").get_data(as_text=True)
    assert "Trip phone 1" in page and "Liam Leader" in page
    assert "Issue a phone" not in page and "Take back" not in page and "Cancel" not in page
    assert 'href="/phones/' not in page


def test_a_leader_opening_another_trips_phones_page_gets_404(client, factory, world):
    other = factory.trip(factory.user("leader"), title="Year 5 Zoo")
    client.login(world["leader"].email)
    assert client.get(f"/trips/{other}/phones").status_code == 404
    assert client.get("/trips/9999/phones").status_code == 404


@pytest.mark.parametrize("role", ["dsl", "admin"])
def test_roles_without_trips_get_404_on_trip_phones_and_403_on_the_pool(
    client, factory, world, role
):
    user = factory.user(role)
    client.login(user.email)
    assert client.get(f"/trips/{world['ids']['trip']}/phones").status_code == 404
    assert client.get("/phones").status_code == 403


def test_auditors_read_a_trips_phones_but_manage_nothing(client, factory, world):
    auditor = factory.user("auditor")
    client.login(auditor.email)
    page = client.get(f"/trips/{world['ids']['trip']}/phones").get_data(as_text=True)
    assert "Trip phone 1" in page and "Issue a phone" not in page
    assert client.get("/phones").status_code == 403


def test_the_head_manages_phones(client, factory, world):
    head = factory.user("head")
    client.login(head.email)
    ids = world["ids"]
    for url in MANAGEMENT_GETS:
        assert client.get(fill(url, ids)).status_code == 200, url
    assert "Issue a phone" in client.get(f"/trips/{ids['trip']}/phones").get_data(as_text=True)


def test_unknown_objects_are_404(office_client, world):
    ids = world["ids"]
    assert office_client.get("/phones/9999").status_code == 404
    assert office_client.get(f"/trips/{ids['trip']}/phones/loans/9999/return").status_code == 404
    assert (
        office_client.post_form(f"/trips/{ids['trip']}/phones/bookings/9999/cancel").status_code
        == 404
    )


def test_nav_shows_phones_and_loans_to_the_office_only(client, office, world):
    client.login(office.email)
    page = client.get("/").get_data(as_text=True)
    assert '<a href="/phones"' in page and '<a href="/loans"' in page
    client.logout()
    client.login(world["leader"].email)
    page = client.get("/").get_data(as_text=True)
    assert '<a href="/phones"' not in page


def test_phone_pages_have_no_inline_script_and_post_with_csrf(app, office_client, world):
    ids = world["ids"]
    for url in [*MANAGEMENT_GETS, "/trips/{trip}/phones", "/"]:
        page = office_client.get(fill(url, ids)).get_data(as_text=True)
        assert "<script" not in page, url
        assert " onclick=" not in page and "style=" not in page, url
        assert page.count("<form") == page.count('name="csrf_token"') + page.count(
            'method="get"'
        ), url


def test_posts_without_a_csrf_token_are_refused(app, office_client, world):
    response = office_client.post(f"/trips/{world['ids']['trip']}/phones/book", data={"count": "1"})
    assert response.status_code == 400
    assert count(app, Booking) == 1

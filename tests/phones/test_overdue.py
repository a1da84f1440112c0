"""Loans past their due time: on the office's home page and from `loans overdue`."""

from datetime import timedelta

from tripcomms.extensions import db
from tripcomms.phones.models import Loan
from tripcomms.phones.queries import describe_lateness, overdue_loans
from tripcomms.types import utcnow


def make_overdue(app, loan_id: int, by: timedelta) -> None:
    """Move a loan's due time into the past, as the clock would."""
    with app.app_context():
        db.session.get(Loan, loan_id).due_at = utcnow() - by
        db.session.commit()


def test_overdue_loans_on_the_office_home_page(app, client, office, factory, pool):
    leader = factory.user("leader", name="Liam Leader", email="liam@school.test")
    trip = factory.trip(leader, title="Year 6 Museum")
    late = pool.issue(pool.phone("Trip phone 3"), trip, leader.id)
    pool.issue(pool.phone("Trip phone 4"), trip, leader.id)  # not due yet
    make_overdue(app, late, timedelta(hours=3, minutes=20))

    client.login(office.email)
    page = client.get("/").get_data(as_text=True)
    section = page[page.index("School phones") :]
    assert "Overdue (1)" in section
    assert "Trip phone 3</strong>: Liam Leader" in section
    assert "Year 6 Museum" in section
    assert "3 h 20 min late" in section or "3 h 19 min late" in section
    assert "Trip phone 4" not in section
    assert "1 on loan" not in section and "2 on loan" in section

    client.logout()
    client.login(leader.email)
    assert "Overdue" not in client.get("/").get_data(as_text=True)


def test_home_page_without_overdue_loans(client, office):
    client.login(office.email)
    page = client.get("/").get_data(as_text=True)
    assert "No phone is overdue." in page


def test_loans_overdue_command(app, runner, factory, pool):
    result = runner.invoke(args=["loans", "overdue"])
    assert result.exit_code == 0
    assert result.output.strip() == "no overdue loans"

    leader = factory.user("leader", name="Liam Leader", email="liam@school.test")
    trip = factory.trip(leader, title="Year 6 Museum")
    first = pool.issue(pool.phone("Trip phone 3"), trip, leader.id)
    second = pool.issue(pool.phone("Trip phone 4"), trip, leader.id)
    pool.issue(pool.phone("Trip phone 5"), trip, leader.id)
    make_overdue(app, first, timedelta(days=2, hours=1))
    make_overdue(app, second, timedelta(minutes=30))

    result = runner.invoke(args=["loans", "overdue"])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(
        f"Trip phone 3: Liam Leader (liam@school.test), Year 6 Museum (trip {trip}), due "
    )
    assert lines[0].endswith("2 days 1 h late")
    assert lines[1].startswith("Trip phone 4:") and lines[1].endswith("30 min late")


def test_returned_loans_are_not_overdue(app, factory, pool):
    from tests.helpers import FACTORY
    from tripcomms.phones import operations as ops

    leader = factory.user("leader")
    loan = pool.issue(pool.phone(), factory.trip(leader), leader.id)
    make_overdue(app, loan, timedelta(hours=1))
    with app.app_context():
        assert len(overdue_loans()) == 1
        ops.return_loan(FACTORY, db.session.get(Loan, loan))
        db.session.commit()
        assert overdue_loans() == []


def test_describe_lateness():
    now = utcnow()
    assert describe_lateness(now - timedelta(seconds=30), now) == "0 min"
    assert describe_lateness(now - timedelta(minutes=59), now) == "59 min"
    assert describe_lateness(now - timedelta(hours=2), now) == "2 h"
    assert describe_lateness(now - timedelta(days=1, minutes=5), now) == "1 day"
    assert describe_lateness(now - timedelta(days=3, hours=4), now) == "3 days 4 h"

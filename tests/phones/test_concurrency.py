"""Two people issue the same phone at the same moment: exactly one loan is made.

Each thread has its own app context and so its own session and connection, as two requests
in two worker processes would. With the operation's lock on the phone (a row lock on
PostgreSQL, the write lock on SQLite) the second waits and then sees the loan. With the lock
taken away both pass the checks, and the partial unique index refuses the second loan. Either
way the loser gets the same clear Conflict.
"""

import pytest
from sqlalchemy import func, select

from tests.helpers import FACTORY, at_once
from tripcomms.audit.operations import verify_chain
from tripcomms.auth.models import User
from tripcomms.errors import Conflict
from tripcomms.extensions import db
from tripcomms.phones import operations as ops
from tripcomms.phones.models import Booking, Loan, Phone, PhoneStatus
from tripcomms.trips.models import Trip


@pytest.mark.parametrize("row_lock", [True, False], ids=["row-lock", "index-only"])
def test_two_issues_of_one_phone_at_the_same_moment(app, factory, pool, monkeypatch, row_lock):
    if not row_lock:
        monkeypatch.setattr(ops, "_lock_phones", lambda phone_ids: None)
    leader = factory.user("leader", name="Liam Leader")
    teacher = factory.user("leader", name="Tara Teacher")
    museum = factory.trip(leader, title="Year 6 Museum")
    zoo = factory.trip(teacher, title="Year 5 Zoo")
    phone_id = pool.phone("Trip phone 3")

    def issue(trip_id: int, holder_id: int):
        phone = db.session.get(Phone, phone_id)
        trip = db.session.get(Trip, trip_id)
        holder = db.session.get(User, holder_id)
        return lambda: ops.issue_loan(FACTORY, phone, trip, holder).id

    results = at_once(
        app, {"museum": lambda: issue(museum, leader.id), "zoo": lambda: issue(zoo, teacher.id)}
    )

    wins = {name: r for name, r in results.items() if isinstance(r, int)}
    losses = {name: r for name, r in results.items() if isinstance(r, Conflict)}
    assert len(wins) == 1 and len(losses) == 1, results
    [(winner, loan_id)] = wins.items()
    [loser] = losses.values()
    holder, title = (
        ("Liam Leader", "Year 6 Museum")
        if winner == "museum"
        else (
            "Tara Teacher",
            "Year 5 Zoo",
        )
    )
    assert str(loser) == f"Trip phone 3 is already on loan to {holder} for {title}"

    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Loan)) == 1
        assert db.session.get(Loan, loan_id).phone_id == phone_id
        assert db.session.get(Phone, phone_id).status == PhoneStatus.ON_LOAN
        assert verify_chain().ok


def test_two_bookings_of_one_phone_at_the_same_moment(app, factory, pool):
    """Bookings have no unique index to fall back on (overlap is not equality), so the lock
    on the phone is what keeps the second booker from promising it twice."""
    museum = factory.trip(factory.user("leader"), title="Year 6 Museum")
    zoo = factory.trip(factory.user("leader"), title="Year 5 Zoo")
    phone_id = pool.phone("Trip phone 3")

    def book(trip_id: int):
        phone = db.session.get(Phone, phone_id)
        trip = db.session.get(Trip, trip_id)
        return lambda: ops.book_phones(FACTORY, trip, phones=[phone])[0].id

    results = at_once(app, {"museum": lambda: book(museum), "zoo": lambda: book(zoo)})
    wins = [r for r in results.values() if isinstance(r, int)]
    losses = [r for r in results.values() if isinstance(r, Conflict)]
    assert len(wins) == 1 and len(losses) == 1, results
    assert str(losses[0]).startswith("Trip phone 3 is booked for Year ")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Booking)) == 1

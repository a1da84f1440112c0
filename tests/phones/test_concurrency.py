"""Two people issue the same phone at the same moment: exactly one loan is made.

Each thread has its own app context and so its own session and connection, as two requests
in two worker processes would. With the operation's lock on the phone (a row lock on
PostgreSQL, the write lock on SQLite) the second waits and then sees the loan. With the lock
taken away both pass the checks, and the partial unique index refuses the second loan. Either
way the loser gets the same clear Conflict.
"""

import threading

import pytest
from sqlalchemy import func, select

from tests.helpers import FACTORY
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

    barrier = threading.Barrier(2, timeout=30)
    results: dict[str, object] = {}

    def issue(name: str, trip_id: int, holder_id: int) -> None:
        with app.app_context():
            try:
                phone = db.session.get(Phone, phone_id)
                trip = db.session.get(Trip, trip_id)
                holder = db.session.get(User, holder_id)
                db.session.commit()  # each request starts its own transaction
                barrier.wait()
                loan = ops.issue_loan(FACTORY, phone, trip, holder)
                db.session.commit()
                results[name] = loan.id
            except Exception as err:  # a Conflict, or anything else for the assertion to show
                db.session.rollback()
                results[name] = err
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=issue, args=("museum", museum, leader.id)),
        threading.Thread(target=issue, args=("zoo", zoo, teacher.id)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)

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
    barrier = threading.Barrier(2, timeout=30)
    results: dict[str, object] = {}

    def book(name: str, trip_id: int) -> None:
        with app.app_context():
            try:
                phone = db.session.get(Phone, phone_id)
                trip = db.session.get(Trip, trip_id)
                db.session.commit()
                barrier.wait()
                [booking] = ops.book_phones(FACTORY, trip, phones=[phone])
                db.session.commit()
                results[name] = booking.id
            except Exception as err:  # a Conflict, or anything else for the assertion to show
                db.session.rollback()
                results[name] = err
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=book, args=("museum", museum)),
        threading.Thread(target=book, args=("zoo", zoo)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    wins = [r for r in results.values() if isinstance(r, int)]
    losses = [r for r in results.values() if isinstance(r, Conflict)]
    assert len(wins) == 1 and len(losses) == 1, results
    assert str(losses[0]).startswith("Trip phone 3 is booked for Year ")
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Booking)) == 1

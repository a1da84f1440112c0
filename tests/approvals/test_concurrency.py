"""Two Headteachers decide the same request at the same moment (one on the web, one by text,
say): the lock on the request makes the second wait and then see the first decision, so
exactly one decision is made and audited. A request sent twice at once (a double click) makes
one request: the lock on the trip makes the second wait and then find the first."""

import threading

from sqlalchemy import func, select

from tests.approvals.staff import LEADER_OWN
from tripcomms.approvals import operations as ops
from tripcomms.approvals.models import PersonalPhoneApproval
from tripcomms.audit.operations import verify_chain
from tripcomms.auth.models import User
from tripcomms.errors import Conflict
from tripcomms.extensions import db
from tripcomms.trips.models import Trip


def test_two_decisions_at_the_same_moment(app, people):
    approval_id = people.ask()
    barrier = threading.Barrier(2, timeout=30)
    results: dict[str, object] = {}

    def decide(name: str, head_id: int) -> None:
        with app.app_context():
            try:
                approval = db.session.get(PersonalPhoneApproval, approval_id)
                head = db.session.get(User, head_id)
                assert approval.state == "pending"  # both read it pending
                db.session.commit()
                barrier.wait()
                if name == "approve":
                    ops.approve(head, approval)
                else:
                    ops.deny(head, approval, "Take a school phone")
                db.session.commit()
                results[name] = approval.state
            except Exception as err:  # a Conflict, or anything else for the assertion to show
                db.session.rollback()
                results[name] = err
            finally:
                db.session.remove()

    threads = [
        threading.Thread(target=decide, args=("approve", people.head.id)),
        threading.Thread(target=decide, args=("deny", people.deputy.id)),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)

    wins = {name: r for name, r in results.items() if not isinstance(r, Exception)}
    losses = [r for r in results.values() if isinstance(r, Conflict)]
    assert len(wins) == 1 and len(losses) == 1, results
    [(winner, state)] = wins.items()
    assert people.approval(approval_id).state == state
    assert "already" in str(losses[0])
    decided = [a for a in people.actions() if a in ("approval.approved", "approval.denied")]
    assert decided == [f"approval.{'approved' if winner == 'approve' else 'denied'}"]
    with app.app_context():
        assert verify_chain().ok


def test_one_request_sent_twice_at_the_same_moment(app, people):
    barrier = threading.Barrier(2, timeout=30)
    results: dict[str, object] = {}

    def ask(name: str) -> None:
        with app.app_context():
            try:
                leader = db.session.get(User, people.leader.id)
                trip = db.session.get(Trip, people.trip_id)
                db.session.commit()
                barrier.wait()
                approval = ops.request_approval(
                    leader, trip, leader, LEADER_OWN, "Both school phones are with group B"
                )
                db.session.commit()
                results[name] = approval.id
            except Exception as err:  # a Conflict, or anything else for the assertion to show
                db.session.rollback()
                results[name] = err
            finally:
                db.session.remove()

    threads = [threading.Thread(target=ask, args=(name,)) for name in ("first", "second")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not any(t.is_alive() for t in threads)

    made = [r for r in results.values() if isinstance(r, int)]
    refused = [r for r in results.values() if isinstance(r, Conflict)]
    assert len(made) == 1 and len(refused) == 1, results
    assert "already a request for this phone" in str(refused[0])
    with app.app_context():
        count = select(func.count()).select_from(PersonalPhoneApproval)
        assert db.session.scalar(count) == 1
        assert verify_chain().ok
    assert people.actions().count("approval.requested") == 1

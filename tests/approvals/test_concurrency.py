"""Two Headteachers decide the same request at the same moment (one on the web, one by text,
say): the lock on the request makes the second wait and then see the first decision, so
exactly one decision is made and audited. A request sent twice at once (a double click) makes
one request: the lock on the trip makes the second wait and then find the first."""

from sqlalchemy import func, select

from tests.approvals.staff import LEADER_OWN
from tests.helpers import at_once
from tripcomms.approvals import operations as ops
from tripcomms.approvals.models import PersonalPhoneApproval
from tripcomms.audit.operations import verify_chain
from tripcomms.auth.models import User
from tripcomms.errors import Conflict
from tripcomms.extensions import db
from tripcomms.trips.models import Trip


def test_two_decisions_at_the_same_moment(app, people):
    approval_id = people.ask()

    def decide(name: str, head_id: int):
        approval = db.session.get(PersonalPhoneApproval, approval_id)
        head = db.session.get(User, head_id)
        assert approval.state == "pending"  # both read it pending

        def act():
            if name == "approve":
                ops.approve(head, approval)
            else:
                ops.deny(head, approval, "Take a school phone")
            return approval.state

        return act

    results = at_once(
        app,
        {
            "approve": lambda: decide("approve", people.head.id),
            "deny": lambda: decide("deny", people.deputy.id),
        },
    )

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
    def ask():
        leader = db.session.get(User, people.leader.id)
        trip = db.session.get(Trip, people.trip_id)
        reason = "Both school phones are with group B"
        return lambda: ops.request_approval(leader, trip, leader, LEADER_OWN, reason).id

    results = at_once(app, {"first": ask, "second": ask})

    made = [r for r in results.values() if isinstance(r, int)]
    refused = [r for r in results.values() if isinstance(r, Conflict)]
    assert len(made) == 1 and len(refused) == 1, results
    assert "already a request for this phone" in str(refused[0])
    with app.app_context():
        count = select(func.count()).select_from(PersonalPhoneApproval)
        assert db.session.scalar(count) == 1
        assert verify_chain().ok
    assert people.actions().count("approval.requested") == 1

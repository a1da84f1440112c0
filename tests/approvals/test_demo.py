"""The demo's approvals: one in force on the trip running today, one waiting for next week's."""

from datetime import timedelta

from tripcomms.approvals.demo import seed_demo_approvals
from tripcomms.approvals.models import ApprovalState
from tripcomms.approvals.queries import in_force, pending
from tripcomms.auth import operations as auth_ops
from tripcomms.demo import DEMO, DEMO_PASSWORD, DEMO_USERS
from tripcomms.extensions import db
from tripcomms.mobile import normalise_number
from tripcomms.phones.demo import seed_demo_phones
from tripcomms.trips import operations as trip_ops
from tripcomms.types import utcnow


def test_seed_demo_approvals(app):
    with app.app_context():
        users = {
            email: auth_ops.create_user(
                DEMO,
                email=email,
                name=name,
                roles=roles,
                password=DEMO_PASSWORD,
                personal_numbers=numbers,
            )
            for email, name, roles, numbers in DEMO_USERS
        }
        now = utcnow()
        today = trip_ops.create_trip(
            DEMO,
            title="Science Museum",
            starts_at=now - timedelta(hours=2),
            ends_at=now + timedelta(hours=6),
            leader=users["leader@demo.school"],
            staff=[users["teacher@demo.school"]],
        )
        next_week = trip_ops.create_trip(
            DEMO,
            title="Forest School",
            starts_at=now + timedelta(days=7),
            ends_at=now + timedelta(days=7, hours=7),
            leader=users["teacher@demo.school"],
            staff=[users["leader@demo.school"]],
        )
        seed_demo_phones(DEMO, [today, next_week])
        made = seed_demo_approvals(DEMO, [today, next_week], users)
        db.session.commit()

        running, waiting = made
        assert running.state == ApprovalState.APPROVED
        assert running.in_force
        assert running.number == normalise_number("07911 123456")
        assert running.decided_by.email == "head@demo.school"
        assert [a.id for a in in_force(today.id)] == [running.id]
        assert waiting.state == ApprovalState.PENDING
        assert waiting.trip_id == next_week.id
        assert waiting.number == normalise_number("07922 234567")
        assert [a.id for a in pending()] == [waiting.id]
        # A list of users does as well as the seed's mapping; nothing is asked twice.
        assert seed_demo_approvals(DEMO, [], list(users.values())) == []

"""Demo data for personal-phone approvals, called by the demo's seed after it has made users,
trips and phones."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from tripcomms.approvals import operations as ops
from tripcomms.approvals.models import PersonalPhoneApproval
from tripcomms.audit.operations import SystemActor
from tripcomms.auth.models import Role, User
from tripcomms.trips.models import Trip, TripState
from tripcomms.types import utcnow


def seed_demo_approvals(
    actor: User | SystemActor,
    trips: Sequence[Trip],
    users: Mapping[str, User] | Iterable[User],
) -> list[PersonalPhoneApproval]:
    """One approval in force and one request waiting, with the demo users' registered numbers.

    The first of ``trips`` in progress gets an approval for its leader's own phone, asked for
    by ``actor`` on their behalf and approved by the Headteacher among ``users`` (a mapping by
    email, as the demo's seed keeps them, or any iterable of users). The next planned trip gets
    a request from its leader, waiting for the Headteacher. A trip, leader or Headteacher that
    is missing, or a leader with no registered number, is skipped.

    Flushes, never commits: the demo's seed commits once. Raises what the operations raise.
    """
    people = list(users.values()) if isinstance(users, Mapping) else list(users)
    head = next((u for u in people if Role.HEAD in u.roles and u.personal_numbers), None)
    now = utcnow()
    made: list[PersonalPhoneApproval] = []
    running = [t for t in trips if t.state_at(now) == TripState.IN_PROGRESS]
    if running and head is not None and running[0].leader.personal_numbers:
        trip = running[0]
        approval = ops.request_approval(
            actor,
            trip,
            trip.leader,
            trip.leader.personal_numbers[0].number,
            "Two groups at the museum; both school phones issued are with the first group.",
        )
        ops.approve(head, approval, "Only while the groups are apart; a school phone after.")
        made.append(approval)
    planned = sorted(
        (t for t in trips if t.state_at(now) == TripState.PLANNED), key=lambda t: t.starts_at
    )
    if planned and planned[0].leader.personal_numbers:
        trip = planned[0]
        made.append(
            ops.request_approval(
                actor,
                trip,
                trip.leader,
                trip.leader.personal_numbers[0].number,
                "The woods have poor signal on the school network; my phone is on another.",
            )
        )
    return made

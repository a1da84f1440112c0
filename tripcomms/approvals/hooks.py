"""What approvals add to other packages: relay endpoints and their first use, the SMS decision
handler, and the trip page's panel."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from tripcomms.approvals import queries
from tripcomms.approvals import sms as _sms  # noqa: F401  (registers the NOTIFY_FROM handler)
from tripcomms.approvals.models import ApprovalState, PersonalPhoneApproval
from tripcomms.approvals.operations import note_first_use
from tripcomms.audit.report import APPROVALS_SLOT, report_section
from tripcomms.auth.models import Role, User
from tripcomms.relay.endpoints import Endpoint, endpoint_provider, endpoint_use_listener
from tripcomms.relay.models import Message
from tripcomms.relay.numbers import relay_window
from tripcomms.trips.models import Trip
from tripcomms.trips.panels import trip_panel
from tripcomms.types import utcnow


@endpoint_provider
def personal_phone_endpoints(trip: Trip, at: datetime) -> Iterable[Endpoint]:
    """Personal numbers with an approval in force: parents' texts go to them, and their texts
    are commands, exactly as for a school phone; the relay still hides the number."""
    return [
        Endpoint(number, user_id, f"{name}'s own phone", personal=True, source_id=approval_id)
        for number, user_id, name, approval_id in queries.numbers_in_force(trip.id, at)
    ]


@endpoint_use_listener
def _first_use(endpoint: Endpoint, message: Message) -> None:
    note_first_use(endpoint, message)


def sees_number(user: User, approval: PersonalPhoneApproval) -> bool:
    """The owner and the Headteacher see a personal number; everyone else its last 3 digits."""
    return user.id == approval.user_id or user.has_role(Role.HEAD)


def can_request(user: User, trip: Trip) -> bool:
    """Whether ``user`` may ask for a personal phone on ``trip`` now: on its staff with a
    registered number, or the office; the trip not cancelled and its relay window not over."""
    if trip.cancelled_at is not None or relay_window(trip).closes_at <= utcnow():
        return False
    if user.has_role(Role.OFFICE):
        return True
    return user.has_role(Role.LEADER) and user.id in trip.staff_ids


@trip_panel("approvals/_trip_panel.html", order=25)
def _approvals_panel(trip: Trip, user: User) -> dict[str, Any] | None:
    now = utcnow()
    requests = queries.for_trip(trip.id)
    if not user.has_role(Role.HEAD, Role.OFFICE, Role.AUDITOR):
        # Staff see their own requests here; the Headteacher and office see all of them.
        requests = [r for r in requests if user.id in (r.user_id, r.requested_by_id)]
    waiting = [r for r in requests if r.state_at(now) == ApprovalState.PENDING]
    return {
        "in_force": [(a, sees_number(user, a)) for a in queries.in_force(trip.id, now)],
        "waiting": waiting,
        "can_request": can_request(user, trip),
        "is_head": user.has_role(Role.HEAD),
        "now": now,
    }


@report_section(APPROVALS_SLOT, "approvals/_report_section.html")
def _report_approvals(trip: Trip, user: User) -> dict[str, Any] | None:
    """The trip report's record of exceptions: every approval granted for the trip, even if
    revoked or ended since, with who decided and when."""
    granted = [a for a in queries.for_trip(trip.id) if queries.was_approved(a)]
    if not granted:
        return None
    return {
        "granted": [(a, sees_number(user, a)) for a in reversed(granted)],
        "now": utcnow(),
    }

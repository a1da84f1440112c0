"""Who may read which part of the communication record.

The Headteacher, the safeguarding lead and auditors read every message. A leader reads the
messages of the trips they lead or accompany, less the notifications tripcomms texted to other
staff. The office reads the texts waiting in its review
queue (it answers them). Every route that shows a message loads it through
``visible_messages`` and answers 404 when it is not there (design: role AND object).
"""

from __future__ import annotations

from sqlalchemy import Select, and_, false, or_, select

from tripcomms.auth.access import one_or_404
from tripcomms.auth.models import Role, User
from tripcomms.relay.models import Kind, Message
from tripcomms.trips.models import Trip, trip_staff

# Roles that read the whole record, and see phone numbers in full.
FULL_ACCESS = (Role.HEAD, Role.DSL, Role.AUDITOR)
# Roles that may open the log at all (leaders see their own trips in it).
LOG_ROLES = (*FULL_ACCESS, Role.LEADER)
# Roles that may report a concern about what they can see (every staff role but auditors,
# who change nothing, and administrators, who see no messages).
CONCERN_REPORTERS = (Role.LEADER, Role.OFFICE, Role.HEAD, Role.DSL)


def has_full_access(user: User) -> bool:
    return user.has_role(*FULL_ACCESS)


def own_trip_ids(user: User) -> Select:
    """The ids of the trips ``user`` leads or accompanies (as a subquery)."""
    accompanies = select(trip_staff.c.trip_id).where(trip_staff.c.user_id == user.id)
    return select(Trip.id).where(or_(Trip.leader_id == user.id, Trip.id.in_(accompanies)))


def log_trips(user: User) -> Select[tuple[Trip]]:
    """The trips whose record ``user`` may read."""
    if has_full_access(user):
        return select(Trip)
    if user.has_role(Role.LEADER):
        return select(Trip).where(Trip.id.in_(own_trip_ids(user)))
    return select(Trip).where(false())


def message_conditions(user: User) -> list:
    """WHERE clauses limiting messages to those ``user`` may read (empty: all of them)."""
    if has_full_access(user):
        return []
    allowed = []
    if user.has_role(Role.LEADER):
        # Texts tripcomms sends to staff (a new concern to the safeguarding lead and the
        # Headteacher, a request to decide, a late reply to the office) are for the one they
        # were sent to: a concern may be about the trip's own staff (policy 19, 37, 60).
        allowed.append(
            and_(
                Message.trip_id.in_(own_trip_ids(user)),
                or_(Message.kind != Kind.NOTIFY, Message.staff_id == user.id),
            )
        )
    if user.has_role(Role.OFFICE):
        allowed.append(Message.needs_review.is_(True))
    return [or_(*allowed)] if allowed else [false()]


def visible_messages(user: User) -> Select[tuple[Message]]:
    return select(Message).where(*message_conditions(user))


def message_or_404(user: User, message_id: int) -> Message:
    """The message if ``user`` may read it; otherwise 404, as if it did not exist."""
    return one_or_404(visible_messages(user).where(Message.id == message_id))


def log_trip_or_404(user: User, trip_id: int) -> Trip:
    """The trip if ``user`` may read its record; otherwise 404."""
    return one_or_404(log_trips(user).where(Trip.id == trip_id))

"""Which trips a user may see: every trip route loads its trip through here."""

from __future__ import annotations

from sqlalchemy import Select, or_, select

from tripcomms.auth.access import one_or_404
from tripcomms.auth.models import Role, User
from tripcomms.trips.models import Trip, trip_staff

# Roles that see every trip: the office runs them, the head oversees, auditors read.
ALL_TRIPS_ROLES = (Role.OFFICE, Role.HEAD, Role.AUDITOR)


def visible_trips(user: User) -> Select[tuple[Trip]]:
    """A query of the trips ``user`` may see: all of them for the office, head and auditors;
    for a leader, the trips they lead or accompany; none for anyone else."""
    query = select(Trip)
    if user.has_role(*ALL_TRIPS_ROLES):
        return query
    if user.has_role(Role.LEADER):
        accompanies = select(trip_staff.c.trip_id).where(trip_staff.c.user_id == user.id)
        return query.where(or_(Trip.leader_id == user.id, Trip.id.in_(accompanies)))
    return query.where(False)


def trip_or_404(user: User, trip_id: int) -> Trip:
    """The trip if ``user`` may see it; otherwise 404, as if it did not exist."""
    return one_or_404(visible_trips(user).where(Trip.id == trip_id))


def can_manage_trips(user: User) -> bool:
    return user.has_role(Role.OFFICE)

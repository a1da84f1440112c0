"""State changes for trips. Each takes the acting user, checks, changes, audits and flushes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select

from tripcomms.audit.operations import SystemActor, record
from tripcomms.auth.models import Role, User
from tripcomms.errors import Conflict, InvalidInput, NotFound
from tripcomms.extensions import db
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow

Actor = User | SystemActor


def _clean_text(value: str | None, field: str, label: str, limit: int, required: bool) -> str:
    cleaned = " ".join((value or "").split())
    if required and not cleaned:
        raise InvalidInput(f"{label} is required", field=field)
    if len(cleaned) > limit:
        raise InvalidInput(f"{label} is at most {limit} characters", field=field)
    return cleaned


def _check_times(starts_at: datetime, ends_at: datetime) -> None:
    if ends_at <= starts_at:
        raise InvalidInput("the trip must end after it starts", field="ends_at")


def _leader(leader: User | None) -> User:
    if leader is None:
        raise InvalidInput("a trip needs a leader", field="leader_id")
    if not leader.active or not leader.has_role(Role.LEADER):
        raise InvalidInput(f"{leader.name} is not an active trip leader", field="leader_id")
    return leader


def _staff(staff: Iterable[User], leader: User) -> list[User]:
    chosen: dict[int, User] = {}
    for user in staff:
        if not user.active:
            raise InvalidInput(f"{user.name}'s account is deactivated", field="staff_ids")
        if user.id != leader.id:
            chosen[user.id] = user
    return sorted(chosen.values(), key=lambda u: u.name)


def find_user_by_email(email: str) -> User:
    """The active user with that email; raises NotFound naming it."""
    user = db.session.scalar(select(User).where(User.email == (email or "").strip().lower()))
    if user is None or not user.active:
        raise NotFound(f"no active staff account for {email}")
    return user


def create_trip(
    actor: Actor,
    *,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    leader: User | None,
    staff: Iterable[User] = (),
    destination: str = "",
    notes: str = "",
) -> Trip:
    """Create a trip. Raises InvalidInput for a missing title or leader, or bad times."""
    trip = Trip(
        title=_clean_text(title, "title", "a title", 200, True),
        destination=_clean_text(destination, "destination", "the destination", 200, False),
        notes=(notes or "").strip()[:5000],
    )
    _check_times(starts_at, ends_at)
    trip.starts_at, trip.ends_at = starts_at, ends_at
    trip.leader = _leader(leader)
    trip.staff = _staff(staff, trip.leader)
    db.session.add(trip)
    db.session.flush()
    record(
        actor,
        "trip.created",
        trip,
        starts_at=starts_at.isoformat(),
        ends_at=ends_at.isoformat(),
        leader_id=trip.leader_id,
        staff_ids=[u.id for u in trip.staff],
    )
    return trip


def update_trip(
    actor: Actor,
    trip: Trip,
    *,
    title: str,
    starts_at: datetime,
    ends_at: datetime,
    leader: User | None,
    staff: Iterable[User] = (),
    destination: str = "",
    notes: str = "",
) -> Trip:
    """Change a trip's details. Raises InvalidInput; a cancelled trip cannot be edited."""
    if trip.cancelled_at is not None:
        raise Conflict("this trip is cancelled and can no longer be changed")
    title = _clean_text(title, "title", "a title", 200, True)
    destination = _clean_text(destination, "destination", "the destination", 200, False)
    _check_times(starts_at, ends_at)
    leader = _leader(leader)
    staff_list = _staff(staff, leader)
    changes: dict[str, object] = {}
    for name, value in (
        ("title", title),
        ("destination", destination),
        ("notes", (notes or "").strip()[:5000]),
        ("starts_at", starts_at),
        ("ends_at", ends_at),
    ):
        if getattr(trip, name) != value:
            changes[name] = value.isoformat() if isinstance(value, datetime) else True
            setattr(trip, name, value)
    if trip.leader_id != leader.id:
        trip.leader = leader
        changes["leader_id"] = leader.id
    if [u.id for u in trip.staff] != [u.id for u in staff_list]:
        trip.staff = staff_list
        changes["staff_ids"] = [u.id for u in staff_list]
    if changes:
        db.session.flush()
        record(actor, "trip.updated", trip, **changes)
    return trip


def cancel_trip(actor: Actor, trip: Trip, reason: str) -> None:
    """Cancel a trip by hand. Raises Conflict if it is already cancelled or over."""
    if trip.cancelled_at is not None:
        raise Conflict("this trip is already cancelled")
    if trip.ends_at <= utcnow():
        raise Conflict("this trip is over; there is nothing to cancel")
    trip.cancelled_at = utcnow()
    trip.cancel_reason = _clean_text(reason, "reason", "a reason", 500, True)
    db.session.flush()
    record(actor, "trip.cancelled", trip)

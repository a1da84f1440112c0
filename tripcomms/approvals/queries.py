"""Read-only questions about personal-phone approvals, for pages, the relay and the report.

Nothing here changes a row.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache

from sqlalchemy import Select, and_, bindparam, or_, select
from sqlalchemy.orm import selectinload

from tripcomms.approvals.models import ApprovalState, PersonalPhoneApproval, Via
from tripcomms.auth.models import Role, StaffNumber, User
from tripcomms.extensions import db, plain_rows
from tripcomms.localtime import LONDON
from tripcomms.phones.models import Phone, PhoneStatus
from tripcomms.phones.queries import availability
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow

# --- Words for people -----------------------------------------------------------------------


def describe_duration(seconds: float) -> str:
    """ "under a minute", "40 min", "3 h 15 min", "2 days 4 h"."""
    minutes = max(int(seconds // 60), 0)
    if minutes == 0:
        return "under a minute"
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min"


def age(approval: PersonalPhoneApproval, now: datetime | None = None) -> str:
    """How long a request has been waiting (or waited, once decided)."""
    until = approval.decided_at or now or utcnow()
    return describe_duration((until - approval.created_at).total_seconds())


# --- School phones ---------------------------------------------------------------------------


def free_school_phones(trip: Trip, starts_at: datetime, ends_at: datetime) -> list[Phone]:
    """School phones that could go on this trip over [starts_at, ends_at): usable, on loan to
    nobody then, and booked for nothing but this trip (a phone booked for the trip and not yet
    issued is one the leader can have). By label."""
    phones = db.session.scalars(
        select(Phone)
        .where(Phone.status.in_((PhoneStatus.AVAILABLE, PhoneStatus.ON_LOAN)))
        .order_by(Phone.label)
    ).all()
    held = availability(phones, starts_at, ends_at)
    return [
        phone
        for phone in phones
        if not held[phone.id].loans and all(b.trip_id == trip.id for b in held[phone.id].bookings)
    ]


# --- In force ------------------------------------------------------------------------------


def _in_force_filter(query: Select, at: datetime) -> Select:
    """Approved, inside the window at ``at``, trip not cancelled by then, and the number still
    registered to its owner, who is still an active user."""
    return (
        query.join(Trip, Trip.id == PersonalPhoneApproval.trip_id)
        .join(User, User.id == PersonalPhoneApproval.user_id)
        .join(
            StaffNumber,
            and_(
                StaffNumber.number == PersonalPhoneApproval.number,
                StaffNumber.user_id == PersonalPhoneApproval.user_id,
            ),
        )
        .where(
            PersonalPhoneApproval.state == ApprovalState.APPROVED,
            PersonalPhoneApproval.starts_at <= at,
            PersonalPhoneApproval.ends_at > at,
            or_(Trip.cancelled_at.is_(None), Trip.cancelled_at > at),
            User.active.is_(True),
        )
        .order_by(PersonalPhoneApproval.id)
    )


def _in_force_query(at: datetime) -> Select[tuple[PersonalPhoneApproval]]:
    return _in_force_filter(select(PersonalPhoneApproval), at).options(
        selectinload(PersonalPhoneApproval.user)
    )


@cache
def _in_force_for_trip_query() -> Select[tuple[PersonalPhoneApproval]]:
    """``_in_force_query`` for one trip, with ``at`` and ``trip_id`` as parameters: built once."""
    return _in_force_query(bindparam("at")).where(
        PersonalPhoneApproval.trip_id == bindparam("trip_id")
    )


def in_force(trip_id: int, at: datetime | None = None) -> list[PersonalPhoneApproval]:
    """The trip's approvals in force at ``at`` (now by default), oldest first."""
    params = {"at": at or utcnow(), "trip_id": trip_id}
    return list(db.session.scalars(_in_force_for_trip_query(), params))


@cache
def _numbers_in_force_query() -> Select:
    """The columns the relay needs of a trip's approvals in force (``trip_id``, ``at``): built
    once, and plain rows rather than objects, since the relay asks it on every text."""
    columns = select(
        PersonalPhoneApproval.number,
        PersonalPhoneApproval.user_id,
        User.name,
        PersonalPhoneApproval.id,
    )
    return _in_force_filter(columns, bindparam("at")).where(
        PersonalPhoneApproval.trip_id == bindparam("trip_id")
    )


def numbers_in_force(trip_id: int, at: datetime) -> list[tuple[str, int, str, int]]:
    """``(number, owner's user id, owner's name, approval id)`` for each approval of the trip
    in force at ``at``, oldest first."""
    rows = plain_rows(_numbers_in_force_query(), {"at": at, "trip_id": trip_id})
    return [tuple(row) for row in rows]


def all_in_force(at: datetime | None = None) -> list[PersonalPhoneApproval]:
    query = _in_force_query(at or utcnow()).options(selectinload(PersonalPhoneApproval.trip))
    return list(db.session.scalars(query))


# --- Lists ---------------------------------------------------------------------------------


def _with_people(query: Select) -> Select:
    return query.options(
        selectinload(PersonalPhoneApproval.trip),
        selectinload(PersonalPhoneApproval.user),
        selectinload(PersonalPhoneApproval.requested_by),
        selectinload(PersonalPhoneApproval.decided_by),
        selectinload(PersonalPhoneApproval.revoked_by),
    )


def pending() -> list[PersonalPhoneApproval]:
    """Requests waiting for a decision, the oldest first."""
    query = select(PersonalPhoneApproval).where(
        PersonalPhoneApproval.state == ApprovalState.PENDING
    )
    return list(
        db.session.scalars(
            _with_people(query).order_by(PersonalPhoneApproval.created_at, PersonalPhoneApproval.id)
        )
    )


def recent_decisions(days: int = 30, limit: int = 50) -> list[PersonalPhoneApproval]:
    """Requests no longer pending, made in the last ``days``, newest first."""
    since = utcnow() - timedelta(days=days)
    query = select(PersonalPhoneApproval).where(
        PersonalPhoneApproval.state != ApprovalState.PENDING,
        PersonalPhoneApproval.created_at >= since,
    )
    return list(
        db.session.scalars(
            _with_people(query)
            .order_by(PersonalPhoneApproval.created_at.desc(), PersonalPhoneApproval.id.desc())
            .limit(limit)
        )
    )


def mine(user: User) -> Select[tuple[PersonalPhoneApproval]]:
    """Requests for ``user``'s phones, or filed by them, newest first."""
    query = select(PersonalPhoneApproval).where(
        or_(
            PersonalPhoneApproval.user_id == user.id,
            PersonalPhoneApproval.requested_by_id == user.id,
        )
    )
    return _with_people(query).order_by(
        PersonalPhoneApproval.created_at.desc(), PersonalPhoneApproval.id.desc()
    )


def for_trip(trip_id: int) -> list[PersonalPhoneApproval]:
    """Every request for the trip, newest first."""
    query = select(PersonalPhoneApproval).where(PersonalPhoneApproval.trip_id == trip_id)
    return list(
        db.session.scalars(
            _with_people(query).order_by(
                PersonalPhoneApproval.created_at.desc(), PersonalPhoneApproval.id.desc()
            )
        )
    )


def visible_approval(user: User, approval_id: int) -> Select[tuple[PersonalPhoneApproval]]:
    """The approval if ``user`` may see it: the Headteacher and auditors see every one; anyone
    else only those for their own phone or that they filed."""
    query = select(PersonalPhoneApproval).where(PersonalPhoneApproval.id == approval_id)
    if user.has_role(Role.HEAD, Role.AUDITOR):
        return query
    return query.where(
        or_(
            PersonalPhoneApproval.user_id == user.id,
            PersonalPhoneApproval.requested_by_id == user.id,
        )
    )


# --- The term report -----------------------------------------------------------------------


def current_term(today: date) -> tuple[date, date]:
    """The school term ``today`` falls in, roughly: autumn September to December, spring
    January to March, summer April to August (the summer holiday counts with summer)."""
    year = today.year
    if today.month >= 9:
        return date(year, 9, 1), date(year, 12, 31)
    if today.month <= 3:
        return date(year, 1, 1), date(year, 3, 31)
    return date(year, 4, 1), date(year, 8, 31)


@dataclass
class DeciderLine:
    name: str
    decided: int = 0
    approved: int = 0
    denied: int = 0
    by_sms: int = 0
    seconds: list[float] = field(default_factory=list)

    @property
    def median(self) -> str:
        return describe_duration(statistics.median(self.seconds)) if self.seconds else ""


@dataclass
class TermReport:
    first_day: date
    last_day: date
    requests: list[PersonalPhoneApproval]
    now: datetime

    def states(self) -> dict[ApprovalState, int]:
        counts = dict.fromkeys(ApprovalState, 0)
        for r in self.requests:
            counts[r.state_at(self.now)] += 1
        return counts

    @property
    def exceptions(self) -> list[PersonalPhoneApproval]:
        """Requests the Headteacher approved, whatever became of them after."""
        return [r for r in self.requests if was_approved(r)]

    @property
    def decided(self) -> list[PersonalPhoneApproval]:
        return [r for r in self.requests if r.decided_at is not None]

    @property
    def median_decision(self) -> str:
        seconds = [r.decision_seconds for r in self.decided if r.decision_seconds is not None]
        return describe_duration(statistics.median(seconds)) if seconds else ""

    @property
    def exceptions_with_school_phone_free(self) -> int:
        return sum(1 for r in self.exceptions if r.school_phones_free)

    @property
    def requests_with_school_phone_free(self) -> int:
        return sum(1 for r in self.requests if r.school_phones_free)

    def by_decider(self) -> list[DeciderLine]:
        lines: dict[int, DeciderLine] = {}
        for r in self.decided:
            assert r.decided_by is not None
            line = lines.setdefault(r.decided_by_id, DeciderLine(r.decided_by.name))
            line.decided += 1
            line.approved += was_approved(r)
            line.denied += r.state == ApprovalState.DENIED
            line.by_sms += r.decided_via == Via.SMS
            if r.decision_seconds is not None:
                line.seconds.append(r.decision_seconds)
        return sorted(lines.values(), key=lambda line: line.name)

    def by_trip(self) -> list[tuple[Trip, list[PersonalPhoneApproval]]]:
        trips: dict[int, tuple[Trip, list[PersonalPhoneApproval]]] = {}
        for r in self.exceptions:
            trips.setdefault(r.trip_id, (r.trip, []))[1].append(r)
        return sorted(trips.values(), key=lambda item: (item[0].starts_at, item[0].id))


def was_approved(approval: PersonalPhoneApproval) -> bool:
    """Approved when decided, even if revoked or ended since (a denial is final)."""
    return approval.decided_at is not None and approval.state != ApprovalState.DENIED


def term_report(first_day: date, last_day: date, now: datetime | None = None) -> TermReport:
    """Requests made from ``first_day`` to ``last_day`` (London dates, both included)."""
    start = datetime.combine(first_day, datetime.min.time(), LONDON)
    end = datetime.combine(last_day + timedelta(days=1), datetime.min.time(), LONDON)
    query = select(PersonalPhoneApproval).where(
        PersonalPhoneApproval.created_at >= start, PersonalPhoneApproval.created_at < end
    )
    requests = list(
        db.session.scalars(
            _with_people(query).order_by(PersonalPhoneApproval.created_at, PersonalPhoneApproval.id)
        )
    )
    return TermReport(first_day, last_day, requests, now or utcnow())

"""Read-only questions about the phone pool, for pages, commands and other packages.

Nothing here changes a row. Periods are half-open, [start, end): a booking that ends at 18:00
does not clash with one that starts at 18:00.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Select, and_, bindparam, func, or_, select
from sqlalchemy.orm import selectinload

from tripcomms.errors import InvalidInput, NotFound
from tripcomms.extensions import db, plain_rows
from tripcomms.localtime import LONDON, to_local
from tripcomms.mobile import normalise_number
from tripcomms.phones.models import Booking, BookingStatus, Loan, Phone, PhoneEvent, PhoneStatus
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow

# A loan's phone is due back this long after the trip ends, unless someone says otherwise, and
# a booking holds its phone as long: trips come back late, and phones are checked in next day.
RETURN_GRACE = timedelta(hours=12)
EN_DASH = "\u2013"


# --- Words for people -----------------------------------------------------------------------


def _day(local: datetime) -> str:
    return f"{local:%a} {local.day} {local:%b}"


def describe_period(starts_at: datetime, ends_at: datetime) -> str:
    """ "Mon 3 Mar 09:00-18:00" (with an en dash), or "Mon 3 Mar 09:00-Tue 4 Mar 06:00" when
    it runs past midnight, in London time."""
    start, end = to_local(starts_at), to_local(ends_at)
    assert start is not None and end is not None
    if start.date() == end.date():
        return f"{_day(start)} {start:%H:%M}{EN_DASH}{end:%H:%M}"
    return f"{_day(start)} {start:%H:%M}{EN_DASH}{_day(end)} {end:%H:%M}"


def describe_moment(moment: datetime) -> str:
    """ "Mon 3 Mar 09:00" in London time."""
    local = to_local(moment)
    assert local is not None
    return f"{_day(local)} {local:%H:%M}"


def describe_lateness(due_at: datetime, now: datetime | None = None) -> str:
    """How late a loan is, roughly: "40 min", "3 h 15 min", "2 days 4 h"."""
    late = (now or utcnow()) - due_at
    minutes = max(int(late.total_seconds() // 60), 0)
    days, minutes = divmod(minutes, 24 * 60)
    hours, minutes = divmod(minutes, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    return f"{minutes} min"


def describe_booking(booking: Booking) -> str:
    """ "Year 6 Museum (Mon 3 Mar 09:00-18:00)"."""
    return f"{booking.trip.title} ({describe_period(booking.starts_at, booking.ends_at)})"


# --- Finding phones -------------------------------------------------------------------------


def find_phone(label_or_number: str) -> Phone:
    """The phone with that label (any case) or that number (any way it is written).

    Raises NotFound naming what was asked for.
    """
    wanted = (label_or_number or "").strip()
    if not wanted:
        raise NotFound("name a phone by its label or its number")
    phone = db.session.scalar(select(Phone).where(func.lower(Phone.label) == func.lower(wanted)))
    if phone is not None:
        return phone
    try:
        number = normalise_number(wanted)
    except InvalidInput:
        number = None
    if number is not None:
        phone = db.session.scalar(select(Phone).where(Phone.number == number))
        if phone is not None:
            return phone
    raise NotFound(f"there is no school phone called or numbered {wanted!r}")


def open_loan(phone_id: int) -> Loan | None:
    """The phone's loan that has not been returned, if any (there is at most one)."""
    return db.session.scalar(
        select(Loan).where(Loan.phone_id == phone_id, Loan.returned_at.is_(None))
    )


def last_loan(phone_id: int) -> Loan | None:
    return db.session.scalar(
        select(Loan).where(Loan.phone_id == phone_id).order_by(Loan.issued_at.desc()).limit(1)
    )


# --- Clashes --------------------------------------------------------------------------------


def clashing_bookings(
    phone_ids: Iterable[int],
    starts_at: datetime,
    ends_at: datetime,
    *,
    ignore_booking_id: int | None = None,
) -> list[Booking]:
    """Bookings still held (not fulfilled or cancelled, for a trip not cancelled) on these
    phones that overlap [starts_at, ends_at), earliest first."""
    ids = list(phone_ids)
    if not ids:
        return []
    query = (
        select(Booking)
        .join(Trip, Booking.trip_id == Trip.id)
        .where(
            Booking.phone_id.in_(ids),
            Booking.status == BookingStatus.BOOKED,
            # A cancelled trip's bookings hold nothing, whoever cancelled it and however.
            Trip.cancelled_at.is_(None),
            Booking.starts_at < ends_at,
            Booking.ends_at > starts_at,
        )
        .options(selectinload(Booking.trip), selectinload(Booking.phone))
        .order_by(Booking.starts_at, Booking.id)
    )
    if ignore_booking_id is not None:
        query = query.where(Booking.id != ignore_booking_id)
    return list(db.session.scalars(query))


def clashing_loans(
    phone_ids: Iterable[int], starts_at: datetime, ends_at: datetime, *, now: datetime | None = None
) -> list[Loan]:
    """Open loans on these phones that hold them during [starts_at, ends_at).

    An open loan holds its phone from issue until it is due back, or until now if it is
    overdue: a phone that is not back cannot be promised to anyone in the meantime.
    """
    ids = list(phone_ids)
    if not ids:
        return []
    conditions = [Loan.phone_id.in_(ids), Loan.returned_at.is_(None), Loan.issued_at < ends_at]
    if starts_at >= (now or utcnow()):
        # A period that starts now or later is clear of a loan due back before it starts; one
        # that started earlier overlaps every open loan, overdue ones included.
        conditions.append(Loan.due_at > starts_at)
    query = (
        select(Loan)
        .where(*conditions)
        .options(selectinload(Loan.trip), selectinload(Loan.holder), selectinload(Loan.phone))
        .order_by(Loan.issued_at)
    )
    return list(db.session.scalars(query))


@dataclass
class Availability:
    """What stands in the way of using one phone over a period; free when both lists are empty."""

    phone: Phone
    bookings: list[Booking] = field(default_factory=list)
    loans: list[Loan] = field(default_factory=list)

    @property
    def free(self) -> bool:
        usable = self.phone.status in (PhoneStatus.AVAILABLE, PhoneStatus.ON_LOAN)
        return usable and not self.bookings and not self.loans


def availability(
    phones: Iterable[Phone], starts_at: datetime, ends_at: datetime
) -> dict[int, Availability]:
    """For each phone, the bookings and loans that hold it during [starts_at, ends_at)."""
    result = {phone.id: Availability(phone) for phone in phones}
    for booking in clashing_bookings(result, starts_at, ends_at):
        result[booking.phone_id].bookings.append(booking)
    for loan in clashing_loans(result, starts_at, ends_at):
        result[loan.phone_id].loans.append(loan)
    return result


# --- Overdue --------------------------------------------------------------------------------


def overdue_loans_query(now: datetime | None = None):
    """Open loans past their due time, the longest overdue first."""
    return (
        select(Loan)
        .where(Loan.returned_at.is_(None), Loan.due_at <= (now or utcnow()))
        .options(selectinload(Loan.phone), selectinload(Loan.trip), selectinload(Loan.holder))
        .order_by(Loan.due_at, Loan.id)
    )


def overdue_loans(now: datetime | None = None) -> list[Loan]:
    """Open loans past their due time, the longest overdue first."""
    return list(db.session.scalars(overdue_loans_query(now)))


# --- For the trip page and the relay --------------------------------------------------------


def trip_bookings(trip_id: int, *, include_cancelled: bool = False) -> list[Booking]:
    query = (
        select(Booking)
        .join(Phone, Booking.phone_id == Phone.id)
        .where(Booking.trip_id == trip_id)
        .options(selectinload(Booking.phone), selectinload(Booking.loan))
        .order_by(Booking.starts_at, Phone.label, Booking.id)
    )
    if not include_cancelled:
        query = query.where(Booking.status != BookingStatus.CANCELLED)
    return list(db.session.scalars(query))


def trip_loans(trip_id: int) -> list[Loan]:
    """The trip's loans: open ones first, each group newest first."""
    query = (
        select(Loan)
        .join(Phone, Loan.phone_id == Phone.id)
        .where(Loan.trip_id == trip_id)
        .options(selectinload(Loan.phone), selectinload(Loan.holder))
        .order_by(Loan.returned_at.is_not(None), Loan.issued_at.desc(), Phone.label)
    )
    return list(db.session.scalars(query))


def trip_phone_summary(trip: Trip) -> dict[str, Any]:
    """What the trip page shows about phones: bookings still held, phones on loan with their
    holder, and phones returned, each a list of rows, plus the counts.

    ``{"booked": [Booking], "on_loan": [Loan], "returned": [Loan], "counts": {...}}``
    """
    booked = [
        b
        for b in trip_bookings(trip.id)
        if b.status == BookingStatus.BOOKED and trip.cancelled_at is None
    ]
    loans = trip_loans(trip.id)
    on_loan = [loan for loan in loans if loan.returned_at is None]
    returned = [loan for loan in loans if loan.returned_at is not None]
    now = utcnow()
    return {
        "trip_id": trip.id,
        "booked": booked,
        "on_loan": on_loan,
        "returned": returned,
        "overdue": [loan for loan in on_loan if loan.is_overdue(now)],
        "counts": {"booked": len(booked), "on_loan": len(on_loan), "returned": len(returned)},
    }


def _in_force_filter(query: Select) -> Select:
    """Loans of the trip (parameter ``trip_id``) open at ``at``, by the phone's label."""
    at = bindparam("at")
    return (
        query.join(Phone, Loan.phone_id == Phone.id)
        .where(
            Loan.trip_id == bindparam("trip_id"),
            Loan.issued_at <= at,
            or_(Loan.returned_at.is_(None), Loan.returned_at > at),
        )
        .order_by(Phone.label)
    )


@cache
def _loans_in_force_query() -> Select:
    """The query behind ``loans_in_force``: built once."""
    return _in_force_filter(select(Loan, Phone))


@cache
def _endpoints_in_force_query() -> Select:
    """The columns the relay needs of the loans in force: built once, and plain rows rather
    than objects, since the relay asks it on every text to a trip."""
    return _in_force_filter(select(Phone.number, Loan.holder_id, Phone.label, Loan.id))


def loans_in_force(trip_id: int, at: datetime) -> list[tuple[Loan, Phone]]:
    """The trip's loans open at that moment, with their phones, by label: a phone counts from
    the moment it is issued until the moment it is returned."""
    rows = db.session.execute(_loans_in_force_query(), {"trip_id": trip_id, "at": at})
    return [(loan, phone) for loan, phone in rows]


def phones_in_force(trip_id: int, at: datetime) -> list[tuple[str, int, str, int]]:
    """``(number, holder's user id, label, loan id)`` for each of the trip's loans open at
    that moment, by label (what ``loans_in_force`` says, without loading the objects)."""
    rows = plain_rows(_endpoints_in_force_query(), {"trip_id": trip_id, "at": at})
    return [tuple(row) for row in rows]


def school_phone_numbers_on_loan(trip_id: int, at: datetime) -> list[str]:
    """E.164 numbers of the school phones on loan to the trip at that moment, by label: the
    trip's school-phone endpoints for the relay."""
    return list(dict.fromkeys(phone.number for _, phone in loans_in_force(trip_id, at)))


def all_school_phone_numbers() -> set[str]:
    """Every school phone's number, retired and lost ones included: a text from any of them
    is from school equipment, never from a parent."""
    return set(db.session.scalars(select(Phone.number)))


# --- History and the calendar ---------------------------------------------------------------


def phone_events_query(phone_id: int):
    """The phone's status changes, newest first."""
    return (
        select(PhoneEvent)
        .where(PhoneEvent.phone_id == phone_id)
        .options(selectinload(PhoneEvent.actor_user), selectinload(PhoneEvent.loan))
        .order_by(PhoneEvent.created_at.desc(), PhoneEvent.id.desc())
    )


def phone_loans_query(phone_id: int):
    """The phone's loans, newest first."""
    return (
        select(Loan)
        .where(Loan.phone_id == phone_id)
        .options(selectinload(Loan.trip), selectinload(Loan.holder))
        .order_by(Loan.issued_at.desc(), Loan.id.desc())
    )


def upcoming_bookings(phone_id: int, now: datetime | None = None) -> list[Booking]:
    """The phone's bookings still held that have not ended, soonest first."""
    query = (
        select(Booking)
        .join(Trip, Booking.trip_id == Trip.id)
        .where(
            Booking.phone_id == phone_id,
            Booking.status == BookingStatus.BOOKED,
            Trip.cancelled_at.is_(None),
            Booking.ends_at > (now or utcnow()),
        )
        .options(selectinload(Booking.trip))
        .order_by(Booking.starts_at)
    )
    return list(db.session.scalars(query))


@dataclass
class CalendarCell:
    day: date
    bookings: list[Booking] = field(default_factory=list)
    loans: list[Loan] = field(default_factory=list)

    @property
    def kind(self) -> str:
        if self.loans:
            return "loan"
        if self.bookings:
            return "booked"
        return "free"

    @property
    def description(self) -> str:
        parts = [f"on loan to {loan.holder.name} for {loan.trip.title}" for loan in self.loans] + [
            f"booked for {b.trip.title}" for b in self.bookings
        ]
        return "; ".join(parts) or "free"


@dataclass
class CalendarRow:
    phone: Phone
    cells: list[CalendarCell]


def calendar(
    phones: list[Phone], first_day: date, days: int = 28, *, now: datetime | None = None
) -> list[CalendarRow]:
    """Each phone's bookings and loans, one cell per London day from ``first_day``."""
    now = now or utcnow()
    day_starts = [
        datetime.combine(first_day + timedelta(days=n), datetime.min.time(), LONDON)
        for n in range(days + 1)
    ]
    start, end = day_starts[0], day_starts[-1]
    rows = {p.id: CalendarRow(p, [CalendarCell(d.date()) for d in day_starts[:-1]]) for p in phones}
    ids = list(rows)
    bookings = clashing_bookings(ids, start, end)
    still_out = Loan.returned_at.is_(None)
    if start >= now:
        still_out = and_(still_out, Loan.due_at > start)
    loans = list(
        db.session.scalars(
            select(Loan)
            .where(
                Loan.phone_id.in_(ids),
                Loan.issued_at < end,
                or_(still_out, Loan.returned_at > start),
            )
            .options(selectinload(Loan.trip), selectinload(Loan.holder))
        )
    )
    for n in range(days):
        lo, hi = day_starts[n], day_starts[n + 1]
        for booking in bookings:
            if booking.starts_at < hi and booking.ends_at > lo:
                rows[booking.phone_id].cells[n].bookings.append(booking)
        for loan in loans:
            until = loan.returned_at or max(loan.due_at, now)
            if loan.issued_at < hi and until > lo:
                rows[loan.phone_id].cells[n].loans.append(loan)
    return [rows[p.id] for p in phones]

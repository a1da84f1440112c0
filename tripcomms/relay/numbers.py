"""Trip numbers: which trip a number serves now, and allocating numbers to trips.

A trip is reachable on its number only inside its window, from ``starts_at -
RELAY_OPEN_BEFORE`` to ``ends_at + RELAY_GRACE_AFTER``. A number serves at most one trip at a
time and rests for NUMBER_COOLDOWN after a trip's window closes, so that a late reply to one
trip can never reach the next trip's staff.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from typing import NamedTuple

from flask import current_app
from sqlalchemy import bindparam, select

from tripcomms.audit.operations import SystemActor, record
from tripcomms.auth.models import User
from tripcomms.errors import Conflict
from tripcomms.extensions import db
from tripcomms.mobile import normalise_number
from tripcomms.relay.models import NumberAllocation, ProxyNumber
from tripcomms.relay.notify import notify_number
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow


class Window(NamedTuple):
    opens_at: datetime
    closes_at: datetime

    def holds(self, moment: datetime) -> bool:
        return self.opens_at <= moment < self.closes_at


def relay_window(trip: Trip) -> Window:
    cfg = current_app.config
    return Window(
        trip.starts_at - cfg["RELAY_OPEN_BEFORE"], trip.ends_at + cfg["RELAY_GRACE_AFTER"]
    )


def _reserved_span(trip: Trip) -> tuple[datetime, datetime]:
    """From the window's opening to the end of its cooldown: no other trip may overlap it."""
    window = relay_window(trip)
    return window.opens_at, window.closes_at + current_app.config["NUMBER_COOLDOWN"]


def current_allocation(trip: Trip) -> NumberAllocation | None:
    return db.session.scalar(
        select(NumberAllocation).where(
            NumberAllocation.trip_id == trip.id, NumberAllocation.released_at.is_(None)
        )
    )


def trip_number(trip: Trip) -> str | None:
    allocation = current_allocation(trip)
    return allocation.proxy_number.number if allocation else None


@cache
def _allocated_trips_query():
    """Trips holding a number (parameter ``number``) and not cancelled: built once, since
    every inbound text asks it."""
    return (
        select(Trip)
        .join(NumberAllocation, NumberAllocation.trip_id == Trip.id)
        .join(ProxyNumber, ProxyNumber.id == NumberAllocation.proxy_number_id)
        .where(
            ProxyNumber.number == bindparam("number"),
            NumberAllocation.released_at.is_(None),
            Trip.cancelled_at.is_(None),
        )
    )


def trip_for_number(number: str, at: datetime) -> Trip | None:
    """The trip that ``number`` serves at ``at``: allocated to it, not cancelled, in window."""
    for trip in db.session.scalars(_allocated_trips_query(), {"number": number}):
        if relay_window(trip).holds(at):
            return trip
    return None


def _span_held(allocation: NumberAllocation) -> tuple[datetime, datetime] | None:
    """The time an allocation keeps its number from other trips: the trip's window and the
    cooldown after it, cut short where the number was released or the trip cancelled before
    the window closed. Parents may have the number from the window's opening on."""
    trip = allocation.trip
    opens, closes = relay_window(trip)
    ended = min(t for t in (closes, allocation.released_at, trip.cancelled_at) if t is not None)
    if ended <= opens:
        return None  # given up before any parent could have texted it
    return opens, ended + current_app.config["NUMBER_COOLDOWN"]


def _clashes(number: ProxyNumber, trip: Trip) -> Trip | None:
    """Another trip whose hold on ``number`` overlaps this trip's window and cooldown."""
    opens, closes = relay_window(trip)
    start, end = opens, closes + current_app.config["NUMBER_COOLDOWN"]
    allocations = db.session.scalars(
        select(NumberAllocation).where(
            NumberAllocation.proxy_number_id == number.id, NumberAllocation.trip_id != trip.id
        )
    )
    for allocation in allocations:
        held = _span_held(allocation)
        if held is not None and start < held[1] and held[0] < end:
            return allocation.trip
    return None


def free_numbers(trip: Trip) -> list[ProxyNumber]:
    # NOTIFY_FROM is on the account too (``numbers sync`` adds it) but answers staff, never
    # a trip's parents.
    notify = notify_number()
    numbers = db.session.scalars(
        select(ProxyNumber).where(ProxyNumber.active.is_(True)).order_by(ProxyNumber.id)
    )
    return [n for n in numbers if n.number != notify and _clashes(n, trip) is None]


def add_number(actor: User | SystemActor, text: str, twilio_sid: str | None = None) -> ProxyNumber:
    """Register one of the school's Twilio numbers. Raises InvalidInput or Conflict."""
    number = normalise_number(text, mobile=False)
    if db.session.scalar(select(ProxyNumber).where(ProxyNumber.number == number)):
        raise Conflict(f"{text.strip()} is already one of the school's trip numbers")
    proxy = ProxyNumber(number=number, twilio_sid=twilio_sid)
    db.session.add(proxy)
    db.session.flush()
    record(actor, "number.added", proxy)
    return proxy


def allocate_number(actor: User | SystemActor, trip: Trip) -> ProxyNumber:
    """Give ``trip`` a number that no other trip holds over its window and cooldown.

    Raises Conflict when the trip already has one, is cancelled, or the pool is exhausted.
    """
    if trip.cancelled_at is not None:
        raise Conflict("this trip is cancelled")
    if current_allocation(trip) is not None:
        raise Conflict("this trip already has a number")
    if relay_window(trip).closes_at <= utcnow():
        raise Conflict("this trip's relay window has closed")
    free = free_numbers(trip)
    if not free:
        raise Conflict(
            "no trip number is free for this trip's dates: every number serves another trip "
            "or is resting after one. Add a number (administrator) or change the dates."
        )
    chosen = _least_recently_used(free)
    allocation = NumberAllocation(trip=trip, proxy_number=chosen)
    db.session.add(allocation)
    db.session.flush()
    record(actor, "number.allocated", trip, proxy_number_id=chosen.id)
    return chosen


def _least_recently_used(numbers: list[ProxyNumber]) -> ProxyNumber:
    last_used: dict[int, datetime] = {}
    for allocation in db.session.scalars(
        select(NumberAllocation).where(
            NumberAllocation.proxy_number_id.in_([n.id for n in numbers])
        )
    ):
        seen = last_used.get(allocation.proxy_number_id)
        if seen is None or allocation.allocated_at > seen:
            last_used[allocation.proxy_number_id] = allocation.allocated_at
    epoch = datetime.min.replace(tzinfo=utcnow().tzinfo)
    return min(numbers, key=lambda n: (last_used.get(n.id, epoch), n.id))


def release_number(actor: User | SystemActor, trip: Trip) -> None:
    allocation = current_allocation(trip)
    if allocation is None:
        raise Conflict("this trip has no number")
    allocation.released_at = utcnow()
    db.session.flush()
    record(actor, "number.released", trip, proxy_number_id=allocation.proxy_number_id)


def ensure_allocation_fits(actor: User | SystemActor, trip: Trip) -> str | None:
    """After a trip's dates change: release its number if it now clashes. Returns a warning."""
    allocation = current_allocation(trip)
    if allocation is None:
        return None
    other = _clashes(allocation.proxy_number, trip)
    if other is None:
        return None
    release_number(actor, trip)
    return f"the trip's number was released because it clashes with {other.title}"


def sync_numbers(actor: User | SystemActor, gateway, public_base_url: str) -> list[str]:
    """Point every number on the Twilio account at this app and register any new ones.

    Returns a line per number. Raises GatewayError when Twilio cannot be reached.
    """
    sms_url = public_base_url + "/twilio/sms"
    status_url = public_base_url + "/twilio/status"
    lines = []
    for incoming in gateway.list_numbers():
        number = normalise_number(incoming.phone_number, mobile=False)
        proxy = db.session.scalar(select(ProxyNumber).where(ProxyNumber.number == number))
        if proxy is None:
            proxy = ProxyNumber(number=number, twilio_sid=incoming.sid)
            db.session.add(proxy)
            state = "added"
        else:
            proxy.twilio_sid = incoming.sid
            state = "updated"
        if incoming.sms_url != sms_url or incoming.status_callback != status_url:
            gateway.configure_number(incoming.sid, sms_url, status_url)
        proxy.configured_at = utcnow()
        db.session.flush()
        record(actor, "number.synced", proxy, state=state)
        lines.append(f"{number} {state}; texts go to {sms_url}")
    return lines

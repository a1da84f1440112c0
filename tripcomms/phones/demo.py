"""Demo data for the phone pool, called by the demo's seed after it has made users and trips."""

from __future__ import annotations

from collections.abc import Sequence

from tripcomms.audit.operations import SystemActor
from tripcomms.auth.models import User
from tripcomms.phones import operations as ops
from tripcomms.phones.models import Phone
from tripcomms.trips.models import Trip, TripState
from tripcomms.types import utcnow

# Real-looking UK mobile numbers that pass phonenumbers.is_valid_number (Ofcom's drama range,
# 07700 900xxx, does not) and that no demo user has as a personal number.
DEMO_PHONES = [
    ("Trip phone 1", "07400 123451", "356938035643801"),
    ("Trip phone 2", "07400 123452", "356938035643802"),
    ("Trip phone 3", "07400 123453", "356938035643803"),
    ("Trip phone 4", "07400 123454", "356938035643804"),
    ("Trip phone 5", "07400 123455", ""),
    ("Spare phone", "07400 123456", ""),
]


def seed_demo_phones(actor: User | SystemActor, trips: Sequence[Trip]) -> list[Phone]:
    """Add six phones; issue two of them to the first of ``trips`` in progress (to its leader
    and to one of its staff, or the leader twice), and book one for the next planned trip.

    Flushes, never commits: the demo's seed commits once. Raises what the operations raise,
    e.g. Conflict if the pool already holds these labels.
    """
    phones = [
        ops.add_phone(actor, label=label, number=number, serial=serial)
        for label, number, serial in DEMO_PHONES
    ]
    now = utcnow()
    running = [t for t in trips if t.state_at(now) == TripState.IN_PROGRESS]
    if running:
        trip = running[0]
        holders = [trip.leader, *(u for u in trip.staff if u.id != trip.leader_id)]
        for phone, holder in zip(phones[:2], [holders[0], holders[-1]], strict=True):
            ops.issue_loan(actor, phone, trip, holder, condition_notes="Small scratch on the back")
    planned = sorted(
        (t for t in trips if t.state_at(now) == TripState.PLANNED), key=lambda t: t.starts_at
    )
    if planned:
        ops.book_phones(actor, planned[0], phones=[phones[2]])
    return phones

"""Read-only questions about trips and their rosters."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from tripcomms.extensions import db
from tripcomms.trips.models import Contact, ContactLink, Pupil, Trip, TripContact, TripPupil


@dataclass
class RosterEntry:
    code: int
    contact: Contact
    links: list[ContactLink] = field(default_factory=list)

    @property
    def no_contact(self) -> bool:
        """Blocked for this trip if a court order (or similar) covers any child on it."""
        return any(link.no_contact for link in self.links)

    @property
    def pupils_text(self) -> str:
        return ", ".join(
            f"{link.pupil.short_name} ({link.relationship_to_pupil})" for link in self.links
        )


def trip_pupils(trip: Trip) -> list[Pupil]:
    query = (
        select(Pupil)
        .join(TripPupil, TripPupil.pupil_id == Pupil.id)
        .where(TripPupil.trip_id == trip.id)
        .order_by(Pupil.last_name, Pupil.first_name)
    )
    return list(db.session.scalars(query))


def roster(trip: Trip) -> list[RosterEntry]:
    """The trip's active contacts by code, each with their links to pupils on this trip."""
    on_trip = select(TripPupil.pupil_id).where(TripPupil.trip_id == trip.id)
    rows = db.session.execute(
        select(TripContact.code, Contact)
        .join(TripContact.contact)
        .where(TripContact.trip_id == trip.id, TripContact.active.is_(True))
        .options(selectinload(Contact.links).selectinload(ContactLink.pupil))
        .order_by(TripContact.code)
    )
    pupil_ids = set(db.session.scalars(on_trip))
    return [
        RosterEntry(code, contact, [link for link in contact.links if link.pupil_id in pupil_ids])
        for code, contact in rows
    ]


def active_contact_count(trip: Trip) -> int:
    return db.session.scalar(
        select(func.count())
        .select_from(TripContact)
        .where(TripContact.trip_id == trip.id, TripContact.active.is_(True))
    )

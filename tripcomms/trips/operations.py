"""State changes for trips. Each takes the acting user, checks, changes, audits and flushes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import inspect, select
from sqlalchemy.orm import selectinload

from tripcomms.audit.operations import SystemActor, record
from tripcomms.auth.models import Role, StaffNumber, User
from tripcomms.csvfiles import ImportRejected, RowError
from tripcomms.errors import Conflict, InvalidInput, NotFound
from tripcomms.extensions import db
from tripcomms.relay.endpoints import school_numbers
from tripcomms.trips.models import Contact, ContactLink, Pupil, Trip, TripContact, TripPupil
from tripcomms.trips.roster import ContactRow, PupilKey, RosterFile, parse_roster, pupil_key
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


# --- Roster import ---------------------------------------------------------------------------


@dataclass
class ImportReport:
    """What an import changed. ``changes`` holds readable lines for the office."""

    rows: int = 0
    pupils_added: int = 0
    pupils_updated: int = 0
    pupils_removed: int = 0
    contacts_added: int = 0
    contacts_updated: int = 0
    contacts_removed: int = 0
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any(
            (
                self.pupils_added,
                self.pupils_updated,
                self.pupils_removed,
                self.contacts_added,
                self.contacts_updated,
                self.contacts_removed,
            )
        )

    def summary(self) -> str:
        if not self.changed:
            return f"{self.rows} rows read; nothing changed"
        return (
            f"{self.rows} rows read; pupils: {self.pupils_added} added, "
            f"{self.pupils_updated} updated, {self.pupils_removed} removed from the trip; "
            f"contacts: {self.contacts_added} added, {self.contacts_updated} updated, "
            f"{self.contacts_removed} removed"
        )


def reserved_numbers(numbers: set[str]) -> dict[str, str]:
    """Of ``numbers``, those that can never be a parent's, with the reason (policy 50)."""
    found: dict[str, str] = {}
    for chunk in _chunks(sorted(numbers)):
        for number in db.session.scalars(
            select(StaffNumber.number).where(StaffNumber.number.in_(chunk))
        ):
            found[number] = "a staff member's personal number (policy 50)"
    for number in numbers & school_numbers():
        found.setdefault(number, "a school phone's own number (policy 45, 50)")
    return found


def _chunks(items: list, size: int = 500):
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _check_against_database(roster: RosterFile, trip: Trip) -> None:
    contact_numbers = {c.mobile for c in roster.contacts}
    own_numbers = {p.own_mobile for p in roster.pupils.values() if p.own_mobile}
    reserved = reserved_numbers(contact_numbers | own_numbers)
    for contact in roster.contacts:
        if contact.mobile in reserved:
            roster.errors.append(
                RowError(contact.row, f"the contact's mobile is {reserved[contact.mobile]}")
            )
    for pupil in roster.pupils.values():
        if pupil.own_mobile in reserved:
            roster.errors.append(
                RowError(pupil.row, f"pupil_mobile is {reserved[pupil.own_mobile]}")
            )
    # Another pupil's own number already on record (from another trip's roster).
    keys = set(roster.pupils)
    for chunk in _chunks(sorted(contact_numbers)):
        for pupil in db.session.scalars(select(Pupil).where(Pupil.own_mobile.in_(chunk))):
            if pupil_key(pupil.first_name, pupil.last_name, pupil.year_group) in keys:
                continue  # this file sets that pupil's number afresh
            for contact in roster.contacts:
                if contact.mobile == pupil.own_mobile:
                    roster.errors.append(
                        RowError(
                            contact.row,
                            f"the contact's mobile is the own number of pupil {pupil.name}; "
                            "staff never text pupils (policy 28)",
                        )
                    )
    # A number on record as a parent's cannot become a pupil's own number.
    for chunk in _chunks(sorted(own_numbers)):
        for contact in db.session.scalars(select(Contact).where(Contact.mobile.in_(chunk))):
            if contact.mobile in contact_numbers:
                continue  # already reported above as a clash within the file
            pupil = next(p for p in roster.pupils.values() if p.own_mobile == contact.mobile)
            roster.errors.append(
                RowError(
                    pupil.row,
                    f"pupil_mobile is on record as the number of contact {contact.name}",
                )
            )
    roster.errors.sort(key=lambda e: e.row)


def import_roster(actor: Actor, trip: Trip, data: bytes) -> ImportReport:
    """Import a roster file into ``trip``: all or nothing.

    Pupils are matched by name and year group, contacts by mobile number. Raises InvalidInput
    for an unreadable file and ImportRejected (with every bad row) for bad rows; in both cases
    nothing is changed. Importing the same file again changes nothing.
    """
    if trip.cancelled_at is not None:
        raise Conflict("this trip is cancelled; its roster can no longer change")
    roster = parse_roster(data)
    _check_against_database(roster, trip)
    if roster.errors:
        raise ImportRejected(roster.errors, what="roster")

    report = ImportReport(rows=len(roster.contacts))
    # Everything needed is loaded up front in a few queries; flushing halfway would cost one
    # round trip per pupil.
    with db.session.no_autoflush:
        pupils = _upsert_pupils(roster, report)
        contacts = _upsert_contacts(roster, report)
        _sync_links(roster, pupils, contacts, report)
        _sync_trip(trip, roster, pupils, contacts, report)
    db.session.flush()
    record(
        actor,
        "roster.imported",
        trip,
        rows=report.rows,
        digest=hashlib.sha256(data).hexdigest(),
        pupils_added=report.pupils_added,
        pupils_updated=report.pupils_updated,
        pupils_removed=report.pupils_removed,
        contacts_added=report.contacts_added,
        contacts_updated=report.contacts_updated,
        contacts_removed=report.contacts_removed,
    )
    return report


def _upsert_pupils(roster: RosterFile, report: ImportReport) -> dict[PupilKey, Pupil]:
    existing: dict[PupilKey, Pupil] = {}
    last_names = sorted({row.last_name for row in roster.pupils.values()})
    for chunk in _chunks(last_names):
        query = (
            select(Pupil)
            .where(Pupil.last_name.in_(chunk))
            .options(selectinload(Pupil.links).selectinload(ContactLink.contact))
        )
        for pupil in db.session.scalars(query):
            existing.setdefault(
                pupil_key(pupil.first_name, pupil.last_name, pupil.year_group), pupil
            )
    result: dict[PupilKey, Pupil] = {}
    for key, row in roster.pupils.items():
        pupil = existing.get(key)
        if pupil is None:
            pupil = Pupil(
                first_name=row.first_name,
                last_name=row.last_name,
                year_group=row.year_group,
                image_restricted=row.image_restricted,
                own_mobile=row.own_mobile,
            )
            db.session.add(pupil)
        elif (pupil.image_restricted, pupil.own_mobile) != (row.image_restricted, row.own_mobile):
            pupil.image_restricted = row.image_restricted
            pupil.own_mobile = row.own_mobile
            report.pupils_updated += 1
            report.changes.append(f"Updated {pupil.name} ({pupil.year_group})")
        result[key] = pupil
    return result


def _upsert_contacts(roster: RosterFile, report: ImportReport) -> dict[str, Contact]:
    wanted = {c.mobile: c for c in roster.contacts}
    existing: dict[str, Contact] = {}
    for chunk in _chunks(sorted(wanted)):
        for contact in db.session.scalars(select(Contact).where(Contact.mobile.in_(chunk))):
            existing[contact.mobile] = contact
    result: dict[str, Contact] = {}
    for mobile, row in wanted.items():
        contact = existing.get(mobile)
        if contact is None:
            contact = Contact(name=row.name, mobile=mobile)
            db.session.add(contact)
        elif contact.name != row.name:
            report.changes.append(f"Renamed contact {contact.name} to {row.name}")
            contact.name = row.name
            report.contacts_updated += 1
        result[mobile] = contact
    return result


def _sync_links(
    roster: RosterFile,
    pupils: dict[PupilKey, Pupil],
    contacts: dict[str, Contact],
    report: ImportReport,
) -> None:
    """Make each listed pupil's contacts exactly those in the file."""
    wanted: dict[PupilKey, dict[str, ContactRow]] = {}
    for row in roster.contacts:
        wanted.setdefault(row.pupil, {})[row.mobile] = row
    for key, pupil in pupils.items():
        rows = wanted.get(key, {})
        # A pupil new in this import has no links yet; asking would query for each one.
        known = inspect(pupil).persistent
        current = {link.contact.mobile: link for link in pupil.links} if known else {}
        for mobile, link in current.items():
            row = rows.get(mobile)
            if row is None:
                pupil.links.remove(link)
                report.changes.append(f"Removed {link.contact.name} as a contact of {pupil.name}")
            elif (link.relationship_to_pupil, link.no_contact) != (
                row.relationship,
                row.no_contact,
            ):
                link.relationship_to_pupil = row.relationship
                link.no_contact = row.no_contact
                report.contacts_updated += 1
                report.changes.append(f"Updated {row.name} for {pupil.name}")
        for mobile, row in rows.items():
            if mobile not in current:
                pupil.links.append(
                    ContactLink(
                        contact=contacts[mobile],
                        relationship_to_pupil=row.relationship,
                        no_contact=row.no_contact,
                    )
                )


def _sync_trip(
    trip: Trip,
    roster: RosterFile,
    pupils: dict[PupilKey, Pupil],
    contacts: dict[str, Contact],
    report: ImportReport,
) -> None:
    """The trip's pupils become those in the file; contacts get codes that never change."""
    wanted_pupils = {id(p): p for p in pupils.values()}
    for trip_pupil in list(trip.trip_pupils):
        if id(trip_pupil.pupil) not in wanted_pupils:
            trip.trip_pupils.remove(trip_pupil)
            report.pupils_removed += 1
            report.changes.append(f"Removed {trip_pupil.pupil.name} from the trip")
    on_trip = {id(tp.pupil) for tp in trip.trip_pupils}
    for pupil in pupils.values():
        if id(pupil) not in on_trip:
            trip.trip_pupils.append(TripPupil(pupil=pupil))
            report.pupils_added += 1
            report.changes.append(f"Added {pupil.name} ({pupil.year_group})")

    wanted_contacts = {id(c): c for c in contacts.values()}
    by_contact = {id(tc.contact): tc for tc in trip.trip_contacts}
    next_code = max((tc.code for tc in trip.trip_contacts), default=0) + 1
    for trip_contact in trip.trip_contacts:
        if trip_contact.active and id(trip_contact.contact) not in wanted_contacts:
            trip_contact.active = False
            report.contacts_removed += 1
            report.changes.append(f"Removed #{trip_contact.code} {trip_contact.contact.name}")
    for row in roster.contacts:
        contact = contacts[row.mobile]
        trip_contact = by_contact.get(id(contact))
        if trip_contact is None:
            trip_contact = TripContact(contact=contact, code=next_code, active=True)
            trip.trip_contacts.append(trip_contact)
            by_contact[id(contact)] = trip_contact
            next_code += 1
            report.contacts_added += 1
            report.changes.append(f"Added #{trip_contact.code} {contact.name}")
        elif not trip_contact.active:
            trip_contact.active = True
            report.contacts_added += 1
            report.changes.append(f"Added #{trip_contact.code} {contact.name} back")

"""Trip, Pupil, Contact and who is on which trip.

A contact is a person with one mobile number; they are linked to each of their children
(``ContactLink``), so a parent of two pupils on one trip is one contact with one code.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.types import UTCDateTime, utcnow


class TripState(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in progress"
    FINISHED = "finished"
    CANCELLED = "cancelled"


trip_staff = Table(
    "trip_staff",
    db.metadata,
    Column("trip_id", ForeignKey("trips.id"), primary_key=True),
    Column("user_id", ForeignKey("users.id"), primary_key=True),
)


class Trip(db.Model):
    __tablename__ = "trips"

    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    destination: Mapped[str] = mapped_column(String(200), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    leader_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    notes: Mapped[str] = mapped_column(Text, default="")
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    leader: Mapped[User] = relationship(foreign_keys=[leader_id])
    staff: Mapped[list[User]] = relationship(secondary=trip_staff, order_by=User.name)
    trip_pupils: Mapped[list[TripPupil]] = relationship(
        back_populates="trip", cascade="all, delete-orphan"
    )
    trip_contacts: Mapped[list[TripContact]] = relationship(
        back_populates="trip", cascade="all, delete-orphan", order_by="TripContact.code"
    )

    def __repr__(self) -> str:
        return f"<Trip {self.id} {self.title!r}>"

    def state_at(self, moment: datetime) -> TripState:
        """Planned, in progress and finished follow the clock; cancelled is set by hand."""
        if self.cancelled_at is not None:
            return TripState.CANCELLED
        if moment < self.starts_at:
            return TripState.PLANNED
        if moment < self.ends_at:
            return TripState.IN_PROGRESS
        return TripState.FINISHED

    @property
    def state(self) -> TripState:
        return self.state_at(utcnow())

    @property
    def staff_ids(self) -> set[int]:
        """The leader and everyone accompanying."""
        return {self.leader_id, *(u.id for u in self.staff)}


class Pupil(db.Model):
    __tablename__ = "pupils"
    __table_args__ = (Index("ix_pupils_name_year", "last_name", "first_name", "year_group"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    year_group: Mapped[str] = mapped_column(String(20))
    image_restricted: Mapped[bool] = mapped_column(Boolean, default=False)
    # Kept only so that the relay can refuse it: staff never text pupils (policy 28, 42, 43).
    own_mobile: Mapped[str | None] = mapped_column(String(20), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    links: Mapped[list[ContactLink]] = relationship(
        back_populates="pupil", cascade="all, delete-orphan"
    )

    @property
    def name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    @property
    def short_name(self) -> str:
        """ "Sam J.": enough for staff to know the child, little to leak."""
        return self.short_name_of(self.first_name, self.last_name)

    @staticmethod
    def short_name_of(first_name: str, last_name: str) -> str:
        return f"{first_name} {last_name[:1]}."


class Contact(db.Model):
    """A parent or carer, one per mobile number."""

    __tablename__ = "contacts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    mobile: Mapped[str] = mapped_column(String(20), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    links: Mapped[list[ContactLink]] = relationship(
        back_populates="contact", cascade="all, delete-orphan"
    )


class ContactLink(db.Model):
    """A contact's relationship to one pupil; ``no_contact`` (e.g. a court order) is per child."""

    __tablename__ = "contact_links"

    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"), primary_key=True, index=True)
    relationship_to_pupil: Mapped[str] = mapped_column("relationship", String(40))
    no_contact: Mapped[bool] = mapped_column(Boolean, default=False)

    contact: Mapped[Contact] = relationship(back_populates="links")
    pupil: Mapped[Pupil] = relationship(back_populates="links")


class TripPupil(db.Model):
    __tablename__ = "trip_pupils"

    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id"), primary_key=True)
    pupil_id: Mapped[int] = mapped_column(ForeignKey("pupils.id"), primary_key=True, index=True)

    trip: Mapped[Trip] = relationship(back_populates="trip_pupils")
    pupil: Mapped[Pupil] = relationship()


class TripContact(db.Model):
    """A contact's short code on one trip (``#12``). Codes are never reused within a trip:
    a contact dropped from the roster keeps the row, marked ``active=False``."""

    __tablename__ = "trip_contacts"
    __table_args__ = (
        UniqueConstraint("trip_id", "contact_id"),
        UniqueConstraint("trip_id", "code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"), index=True)
    code: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    trip: Mapped[Trip] = relationship(back_populates="trip_contacts")
    contact: Mapped[Contact] = relationship()

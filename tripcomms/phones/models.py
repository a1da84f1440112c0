"""Phone, Booking, Loan and PhoneEvent.

A booking holds one named phone for a trip over a period; "any three phones" is three bookings,
chosen when the office books, so that each phone's diary shows exactly what it is promised to.
A loan is a phone in a member of staff's hands for a trip. The database itself allows at most
one open loan per phone (a partial unique index), whatever the application checks first.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Enum, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.trips.models import Trip
from tripcomms.types import UTCDateTime, utcnow


class PhoneStatus(StrEnum):
    AVAILABLE = "available"
    ON_LOAN = "on loan"
    REPAIR = "repair"
    LOST = "lost"
    RETIRED = "retired"


class BookingStatus(StrEnum):
    BOOKED = "booked"
    FULFILLED = "fulfilled"  # a loan was issued against it
    CANCELLED = "cancelled"


class ReturnCondition(StrEnum):
    OK = "ok"
    DAMAGED = "damaged"
    LOST = "lost"


# What a phone becomes when it comes back (or does not) in each condition.
STATUS_AFTER_RETURN = {
    ReturnCondition.OK: PhoneStatus.AVAILABLE,
    ReturnCondition.DAMAGED: PhoneStatus.REPAIR,
    ReturnCondition.LOST: PhoneStatus.LOST,
}


def _enum(enum_class: type[StrEnum], name: str) -> Enum:
    # Stored as the value in a VARCHAR with a CHECK constraint, as auth's Role is, so that
    # adding a value later is a small migration on both databases.
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=True,
        length=16,
        name=name,
        values_callable=lambda members: [m.value for m in members],
    )


class Phone(db.Model):
    __tablename__ = "phones"

    id: Mapped[int] = mapped_column(primary_key=True)
    label: Mapped[str] = mapped_column(String(60), unique=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    serial: Mapped[str] = mapped_column(String(60), default="")
    status: Mapped[PhoneStatus] = mapped_column(
        _enum(PhoneStatus, "status"), default=PhoneStatus.AVAILABLE, index=True
    )
    notes: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    def __repr__(self) -> str:
        return f"<Phone {self.id} {self.label!r}>"


class Booking(db.Model):
    """One phone held for one trip over [starts_at, ends_at)."""

    __tablename__ = "bookings"
    __table_args__ = (Index("ix_bookings_phone_period", "phone_id", "starts_at", "ends_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_id: Mapped[int] = mapped_column(ForeignKey("phones.id"))
    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id"), index=True)
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    status: Mapped[BookingStatus] = mapped_column(
        _enum(BookingStatus, "status"), default=BookingStatus.BOOKED
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancelled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"))

    phone: Mapped[Phone] = relationship()
    trip: Mapped[Trip] = relationship()
    loan: Mapped[Loan | None] = relationship()
    created_by: Mapped[User | None] = relationship(foreign_keys=[created_by_id])
    cancelled_by: Mapped[User | None] = relationship(foreign_keys=[cancelled_by_id])

    def __repr__(self) -> str:
        return f"<Booking {self.id} phone={self.phone_id} trip={self.trip_id} {self.status}>"


class Loan(db.Model):
    """A phone issued to a member of a trip's staff, open until it is returned."""

    __tablename__ = "loans"
    __table_args__ = (
        # At most one open loan per phone, enforced by the database so that two people issuing
        # the same phone at the same moment cannot both succeed.
        Index(
            "ux_loans_open_phone",
            "phone_id",
            unique=True,
            sqlite_where=text("returned_at IS NULL"),
            postgresql_where=text("returned_at IS NULL"),
        ),
        Index("ix_loans_phone_issued", "phone_id", "issued_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_id: Mapped[int] = mapped_column(ForeignKey("phones.id"))
    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id"), index=True)
    holder_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    issued_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    condition_out: Mapped[str] = mapped_column(String(500), default="")
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    returned_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    return_condition: Mapped[ReturnCondition | None] = mapped_column(
        _enum(ReturnCondition, "return_condition")
    )
    return_notes: Mapped[str] = mapped_column(String(500), default="")
    # The return checklist. None means it was not asked (a return from the command line).
    charger_returned: Mapped[bool | None] = mapped_column(Boolean)
    # The handset holds parents' names and messages: they are deleted before it goes out again.
    texts_deleted: Mapped[bool | None] = mapped_column(Boolean)

    phone: Mapped[Phone] = relationship()
    trip: Mapped[Trip] = relationship()
    holder: Mapped[User] = relationship(foreign_keys=[holder_id])
    issued_by: Mapped[User | None] = relationship(foreign_keys=[issued_by_id])
    returned_by: Mapped[User | None] = relationship(foreign_keys=[returned_by_id])

    def __repr__(self) -> str:
        return f"<Loan {self.id} phone={self.phone_id} trip={self.trip_id}>"

    @property
    def is_open(self) -> bool:
        return self.returned_at is None

    def is_overdue(self, moment: datetime | None = None) -> bool:
        return self.returned_at is None and (moment or utcnow()) >= self.due_at


class PhoneEvent(db.Model):
    """One change of a phone's status (added, issued, returned, set by hand, retired): the
    phone's own history, kept beside the audit chain so that the phone page can show it
    without reading the whole log."""

    __tablename__ = "phone_events"
    __table_args__ = (Index("ix_phone_events_phone_created", "phone_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    phone_id: Mapped[int] = mapped_column(ForeignKey("phones.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    actor: Mapped[str] = mapped_column(String(40))  # "user", or a system actor's name
    kind: Mapped[str] = mapped_column(String(20))  # added, issued, returned, by hand, retired
    from_status: Mapped[PhoneStatus | None] = mapped_column(_enum(PhoneStatus, "from_status"))
    to_status: Mapped[PhoneStatus] = mapped_column(_enum(PhoneStatus, "to_status"))
    note: Mapped[str] = mapped_column(String(500), default="")
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"))

    phone: Mapped[Phone] = relationship()
    actor_user: Mapped[User | None] = relationship(foreign_keys=[actor_id])
    loan: Mapped[Loan | None] = relationship()

    @property
    def actor_display(self) -> str:
        return self.actor_user.name if self.actor_user is not None else self.actor

"""Trip numbers, every text in and out, and what Twilio said about each.

Every SMS is a ``Message`` row before anything is sent (design rule 2). Outbound rows start
``pending``; the outbox sender claims them after the commit that wrote them.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.trips.models import Contact, Trip
from tripcomms.types import UTCDateTime, utcnow


class ProxyNumber(db.Model):
    """One of the school's Twilio numbers; it serves at most one trip at a time."""

    __tablename__ = "proxy_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    twilio_sid: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    configured_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NumberAllocation(db.Model):
    """A trip's number. Released allocations stay as history."""

    __tablename__ = "number_allocations"

    id: Mapped[int] = mapped_column(primary_key=True)
    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id"), index=True)
    proxy_number_id: Mapped[int] = mapped_column(ForeignKey("proxy_numbers.id"), index=True)
    allocated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    trip: Mapped[Trip] = relationship()
    proxy_number: Mapped[ProxyNumber] = relationship()


class Direction(StrEnum):
    IN = "in"
    OUT = "out"


class Kind(StrEnum):
    """What a message is, for the inbox, the log and the property tests."""

    # inbound, by sender
    FROM_CONTACT = "from_contact"  # a parent or carer on the trip
    COMMAND = "command"  # from one of the trip's endpoints (a staff phone)
    FROM_STAFF_UNAPPROVED = "from_staff_unapproved"  # a staff number that is not an endpoint
    FROM_PUPIL = "from_pupil"
    FROM_UNKNOWN = "from_unknown"
    NO_TRIP = "no_trip"  # to a number with no trip in its window now
    TO_NOTIFY = "to_notify"  # to NOTIFY_FROM: staff answering a notification (APPROVE 17)
    # outbound
    FORWARD = "forward"  # a parent's text to an endpoint
    TO_CONTACT = "to_contact"  # staff reply to one parent
    BROADCAST = "broadcast"  # staff text to every parent on the trip
    COPY = "copy"  # what one endpoint sent, copied to the trip's other endpoints
    RECEIPT = "receipt"  # "Sent to 28; 2 opted out"
    HELP = "help"  # command help, LIST, refusals to an endpoint
    AUTO_REPLY = "auto_reply"  # to unknown numbers, pupils, unapproved staff, no trip
    KEYWORD_REPLY = "keyword_reply"  # the HELP keyword from a parent
    NOTIFY = "notify"  # from NOTIFY_FROM to staff: a request to decide, a new concern, a late reply


# Outbound kinds whose recipient is a parent or carer: the relay's strictest rules apply.
TO_CONTACT_KINDS = frozenset({Kind.TO_CONTACT, Kind.BROADCAST, Kind.KEYWORD_REPLY})


class Status(StrEnum):
    RECEIVED = "received"  # inbound
    BLOCKED = "blocked"  # refused by a content rule; never sent
    PENDING = "pending"  # waiting for the outbox
    SENDING = "sending"  # claimed by a sender, under a lease
    QUEUED = "queued"  # Twilio accepted it
    ACCEPTED = "accepted"
    SENT = "sent"
    DELIVERED = "delivered"
    UNDELIVERED = "undelivered"
    FAILED = "failed"


FINAL_STATUSES = frozenset({Status.DELIVERED, Status.UNDELIVERED, Status.FAILED})
# A text that Twilio could not get to the phone.
FAILED_STATUSES = frozenset({Status.FAILED, Status.UNDELIVERED})
# Order of Twilio's statuses: a callback never moves a message backwards.
STATUS_RANK = {
    Status.PENDING: 0,
    Status.SENDING: 1,
    Status.ACCEPTED: 2,
    Status.QUEUED: 3,
    Status.SENT: 4,
    Status.DELIVERED: 5,
    Status.UNDELIVERED: 5,
    Status.FAILED: 5,
}


def body_digest(salt: str, body: str) -> str:
    return hashlib.sha256((salt + body).encode()).hexdigest()


class Message(db.Model):
    __tablename__ = "messages"
    __table_args__ = (
        Index("ix_messages_outbox", "status", "next_attempt_at"),
        Index("ix_messages_trip_created", "trip_id", "created_at"),
        Index("ix_messages_contact_created", "contact_id", "created_at"),
        # The communication log pages every search by time (migration 0007).
        Index("ix_messages_created_at", "created_at"),
        # Whether a staff phone has used #codes on a trip: asked for each forward of every
        # parent's text, so it must not scan the trip's whole log (migration 0009).
        Index("ix_messages_from_trip", "from_number", "trip_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    trip_id: Mapped[int | None] = mapped_column(ForeignKey("trips.id"))
    direction: Mapped[Direction] = mapped_column(String(3))
    kind: Mapped[Kind] = mapped_column(String(24))
    from_number: Mapped[str] = mapped_column(String(20))
    to_number: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text, default="")
    # A per-message salt keeps the audit digest from confirming a guessed body.
    body_salt: Mapped[str] = mapped_column(String(32), default=lambda: secrets.token_hex(16))
    body_redacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    num_media: Mapped[int] = mapped_column(Integer, default=0)
    media_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    status: Mapped[Status] = mapped_column(String(16))
    error_code: Mapped[int | None] = mapped_column(Integer)
    error_message: Mapped[str] = mapped_column(String(300), default="")
    twilio_sid: Mapped[str | None] = mapped_column(String(64), unique=True)

    # The parent in the conversation, and the staff member (author or endpoint holder).
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    staff_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    # The endpoint number (a school phone, or an approved personal phone) involved.
    endpoint: Mapped[str | None] = mapped_column(String(20))
    via: Mapped[str] = mapped_column(String(8), default="sms")  # sms or web
    # The inbound text this is the relay's reply to or forward of. Notices to staff about a
    # concern or a late reply are caused by no message: they hang on the concern or the
    # escalation. A text sent again keeps the cause of the text it repeats.
    caused_by_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    # For a text to a parent sent again from the inbox: the failed text it repeats. A failed
    # text is sent again at most once (a blocked attempt to send it again is not a sending and
    # has none); the new text may fail in turn and be sent again itself.
    retry_of_id: Mapped[int | None] = mapped_column(
        ForeignKey("messages.id"), unique=True, index=True
    )
    broadcast_id: Mapped[int | None] = mapped_column(ForeignKey("broadcasts.id"), index=True)
    # Why it is here: blocked rule, review reason, command name.
    note: Mapped[str] = mapped_column(String(300), default="")
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reviewed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    flagged: Mapped[str] = mapped_column(String(40), default="")  # e.g. "media" for the DSL

    # Outbox bookkeeping.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When the latest attempt was claimed.
    attempt_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set while an attempt's outcome is unknown (no answer came, or the sender died holding the
    # lease): when the earliest such attempt started. Twilio may have the text, so the outbox
    # looks for it before sending again; cleared when the message gets its sid.
    unknown_outcome_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    trip: Mapped[Trip | None] = relationship()
    contact: Mapped[Contact | None] = relationship()
    staff: Mapped[User | None] = relationship(foreign_keys=[staff_id])
    caused_by: Mapped[Message | None] = relationship(remote_side=[id], foreign_keys=[caused_by_id])
    retry_of: Mapped[Message | None] = relationship(remote_side=[id], foreign_keys=[retry_of_id])

    def __repr__(self) -> str:
        return f"<Message {self.id} {self.direction} {self.kind} {self.status}>"

    @property
    def digest(self) -> str:
        return body_digest(self.body_salt, self.body)

    def audit_data(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "digest": self.digest}


class DeliveryEvent(db.Model):
    """A status callback from Twilio. Kept even when its sid is not yet known: the outbox may
    commit the sid after Twilio has already called back."""

    __tablename__ = "delivery_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    twilio_sid: Mapped[str] = mapped_column(String(64), index=True)
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[int | None] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    applied: Mapped[bool] = mapped_column(Boolean, default=False)


class OptOut(db.Model):
    """A number that texted STOP to one of our trip numbers (or Twilio answered 21610)."""

    __tablename__ = "opt_outs"
    __table_args__ = (UniqueConstraint("number", "proxy_number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    number: Mapped[str] = mapped_column(String(20))
    proxy_number: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Broadcast(db.Model):
    """One text to every parent on a trip, by web or by the ALL command."""

    __tablename__ = "broadcasts"

    id: Mapped[int] = mapped_column(primary_key=True)
    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id"), index=True)
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    skipped_opted_out: Mapped[int] = mapped_column(Integer, default=0)
    skipped_no_contact: Mapped[int] = mapped_column(Integer, default=0)
    # The idempotency key of the confirm form, so a second click makes no second broadcast.
    request_key: Mapped[str | None] = mapped_column(String(64), unique=True)

    trip: Mapped[Trip] = relationship()
    author: Mapped[User | None] = relationship()


# --- The web inbox ----------------------------------------------------------------------------


class ReadMarker(db.Model):
    """How far one member of staff has read one thread (a trip and a parent) in the web inbox.

    Parents' texts with a larger id than ``last_read_message_id`` are unread for that person.
    """

    __tablename__ = "read_markers"
    __table_args__ = (UniqueConstraint("user_id", "trip_id", "contact_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # Looked up by user and trip: the unique constraint's index serves that.
    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id"))
    contact_id: Mapped[int] = mapped_column(ForeignKey("contacts.id"))
    last_read_message_id: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class SendKey(db.Model):
    """The one-time key of a compose form on the web, and the message it sent.

    A second click (or a resubmitted form) brings the same key back; the message it already
    sent is returned instead of sending another. The unique key settles two at once.
    """

    __tablename__ = "send_keys"

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    message: Mapped[Message] = relationship()


class MessageTemplate(db.Model):
    """A ready-made text the office keeps ("Coach delayed by {minutes} minutes").

    Offered when staff write to parents on the web; ``{placeholders}`` are filled in by the
    person sending before it can go. Retired templates are kept, no longer offered.
    """

    __tablename__ = "message_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True)
    body: Mapped[str] = mapped_column(Text)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

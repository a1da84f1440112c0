"""Concerns for the safeguarding lead, and the record of texts escalated for a late reply.

A concern is about one message, or about a thread (a parent or carer on one trip). It moves
open -> investigating -> closed with an outcome (and a closed one may be reopened); each move
is a method that takes ``(user, reason)``, keeps a ``ConcernUpdate`` with the reason, and
writes an audit event holding only ids and a digest of the reason (policy 19, 37, 60).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tripcomms.audit.operations import SystemActor, record
from tripcomms.auth.models import User
from tripcomms.errors import Conflict, InvalidInput
from tripcomms.extensions import db
from tripcomms.relay.models import Message
from tripcomms.trips.models import Contact, Trip
from tripcomms.types import UTCDateTime, utcnow

Actor = User | SystemActor
MAX_TEXT = 4000


class Category(StrEnum):
    MISUSE = "misuse"
    BULLYING = "bullying"
    SAFEGUARDING = "safeguarding"
    UNKNOWN_SENDER = "unknown_sender"
    PICTURE = "picture"
    OTHER = "other"

    @property
    def label(self) -> str:
        return CATEGORY_LABELS[self]


CATEGORY_LABELS = {
    Category.MISUSE: "Misuse of phones or texts",
    Category.BULLYING: "Bullying or harassment",
    Category.SAFEGUARDING: "Safeguarding",
    Category.UNKNOWN_SENDER: "Unknown sender",
    Category.PICTURE: "Picture received",
    Category.OTHER: "Other",
}


class ConcernStatus(StrEnum):
    OPEN = "open"
    INVESTIGATING = "investigating"
    CLOSED = "closed"

    @property
    def label(self) -> str:
        return self.value.capitalize()


class Outcome(StrEnum):
    NO_FURTHER_ACTION = "no_further_action"
    ADVICE_GIVEN = "advice_given"
    STAFF_PROCEDURES = "staff_procedures"
    REFERRED = "referred"
    UNFOUNDED = "unfounded"

    @property
    def label(self) -> str:
        return OUTCOME_LABELS[self]


OUTCOME_LABELS = {
    Outcome.NO_FURTHER_ACTION: "No further action needed",
    Outcome.ADVICE_GIVEN: "Advice or guidance given",
    Outcome.STAFF_PROCEDURES: "Dealt with under staff conduct procedures",
    Outcome.REFERRED: "Referred (LADO, children's social care or police)",
    Outcome.UNFOUNDED: "Unfounded",
}

# Which status each move may start from.
MOVES = {
    "investigate": {ConcernStatus.OPEN},
    "close": {ConcernStatus.OPEN, ConcernStatus.INVESTIGATING},
    "reopen": {ConcernStatus.CLOSED},
}


def text_digest(text: str) -> str:
    """What the audit trail keeps of free text a person wrote: enough to prove it unchanged."""
    return hashlib.sha256(text.encode()).hexdigest()


def _clean_reason(reason: str | None, *, required: bool = True) -> str:
    text = (reason or "").strip()
    if required and not text:
        raise InvalidInput("say why, in a few words", field="reason")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"keep it under {MAX_TEXT:,} characters", field="reason")
    return text


class Concern(db.Model):
    __tablename__ = "concerns"
    __table_args__ = (Index("ix_concerns_status_created", "status", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    trip_id: Mapped[int | None] = mapped_column(ForeignKey("trips.id"), index=True)
    # About one message, or (message None) about a parent's whole thread on the trip.
    message_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"), index=True)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    category: Mapped[Category] = mapped_column(String(24))
    description: Mapped[str] = mapped_column(Text, default="")
    # A person who raised it, or the rule that did ("media", "pupil", "unapproved_phone").
    raised_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    rule: Mapped[str] = mapped_column(String(24), default="")
    status: Mapped[ConcernStatus] = mapped_column(String(16), default=ConcernStatus.OPEN)
    outcome: Mapped[Outcome | None] = mapped_column(String(24))
    handler_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    notified: Mapped[bool] = mapped_column(Boolean, default=False)

    trip: Mapped[Trip | None] = relationship()
    message: Mapped[Message | None] = relationship()
    contact: Mapped[Contact | None] = relationship()
    raised_by: Mapped[User | None] = relationship(foreign_keys=[raised_by_id])
    handler: Mapped[User | None] = relationship(foreign_keys=[handler_id])
    updates: Mapped[list[ConcernUpdate]] = relationship(
        back_populates="concern", order_by="ConcernUpdate.id", cascade="all, delete-orphan"
    )
    # The texts that told the safeguarding lead and the Headteacher about it.
    notices: Mapped[list[Message]] = relationship(
        secondary="concern_notices", order_by=Message.id, viewonly=True
    )

    def __repr__(self) -> str:
        return f"<Concern {self.id} {self.category} {self.status}>"

    @property
    def automatic(self) -> bool:
        return bool(self.rule)

    @property
    def category_label(self) -> str:
        return Category(self.category).label

    @property
    def outcome_label(self) -> str:
        return Outcome(self.outcome).label if self.outcome else ""

    @property
    def raised_by_display(self) -> str:
        if self.raised_by is not None:
            return self.raised_by.name
        return f"tripcomms ({self.rule.replace('_', ' ')})" if self.rule else "unknown"

    def audit_data(self) -> dict:
        return {
            "id": self.id,
            "category": str(self.category),
            "status": str(self.status),
            "trip_id": self.trip_id,
            "message_id": self.message_id,
            "contact_id": self.contact_id,
        }

    # -- the state machine -------------------------------------------------------------------

    def _move(
        self, user: Actor, move: str, to: ConcernStatus, reason: str, outcome: Outcome | None
    ) -> ConcernUpdate:
        if ConcernStatus(self.status) not in MOVES[move]:
            raise Conflict(f"this concern is {self.status}; it cannot be {move}d now")
        before = ConcernStatus(self.status)
        now = utcnow()
        self.status = to
        self.updated_at = now
        if isinstance(user, User):
            self.handler_id = user.id
        update = ConcernUpdate(
            concern=self,
            created_at=now,
            actor_id=user.id if isinstance(user, User) else None,
            from_status=before,
            to_status=to,
            reason=reason,
            outcome=outcome,
        )
        db.session.add(update)
        db.session.flush()
        record(
            user,
            f"concern.{move}",
            self,
            **{"from": str(before), "to": str(to)},
            outcome=str(outcome) if outcome else None,
            reason_digest=text_digest(reason),
            update_id=update.id,
        )
        return update

    def investigate(self, user: Actor, reason: str) -> ConcernUpdate:
        """Open -> investigating. Raises Conflict from any other status, InvalidInput on a
        missing or overlong reason."""
        return self._move(
            user, "investigate", ConcernStatus.INVESTIGATING, _clean_reason(reason), None
        )

    def close(self, user: Actor, reason: str, outcome: Outcome | str) -> ConcernUpdate:
        """Open or investigating -> closed with an outcome. Raises Conflict when already
        closed, InvalidInput on an unknown outcome or a missing reason."""
        try:
            chosen = Outcome(outcome)
        except ValueError:
            raise InvalidInput("choose an outcome", field="outcome") from None
        text = _clean_reason(reason)
        update = self._move(user, "close", ConcernStatus.CLOSED, text, chosen)
        self.outcome = chosen
        self.closed_at = update.created_at
        return update

    def reopen(self, user: Actor, reason: str) -> ConcernUpdate:
        """Closed -> investigating (new information). Raises Conflict unless closed."""
        update = self._move(
            user, "reopen", ConcernStatus.INVESTIGATING, _clean_reason(reason), None
        )
        self.outcome = None
        self.closed_at = None
        return update


class ConcernUpdate(db.Model):
    """One move of a concern, with who made it and why: the concern's own history."""

    __tablename__ = "concern_updates"

    id: Mapped[int] = mapped_column(primary_key=True)
    concern_id: Mapped[int] = mapped_column(ForeignKey("concerns.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    from_status: Mapped[ConcernStatus | None] = mapped_column(String(16))
    to_status: Mapped[ConcernStatus] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    outcome: Mapped[Outcome | None] = mapped_column(String(24))

    concern: Mapped[Concern] = relationship(back_populates="updates")
    actor: Mapped[User | None] = relationship()

    @property
    def actor_display(self) -> str:
        return self.actor.name if self.actor is not None else "tripcomms"

    @property
    def outcome_label(self) -> str:
        return Outcome(self.outcome).label if self.outcome else ""


class ConcernNotice(db.Model):
    """A text from NOTIFY_FROM that told the safeguarding lead or the Headteacher about a
    concern. A notice hangs on its concern, never on the message the concern is about: a
    message's ``caused_by`` means only the relay's own replies and forwards to an inbound
    text."""

    __tablename__ = "concern_notices"

    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), primary_key=True)
    concern_id: Mapped[int] = mapped_column(ForeignKey("concerns.id"), index=True)

    concern: Mapped[Concern] = relationship()
    message: Mapped[Message] = relationship()


class ResponseEscalation(db.Model):
    """A parent's text that waited past twice the response target: escalated once, ever.

    The unique message id is what makes the escalation check safe to run again, and from
    several processes at once: a second insert for the same text fails.
    """

    __tablename__ = "response_escalations"

    id: Mapped[int] = mapped_column(primary_key=True)
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id"), unique=True)
    escalated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    notice_id: Mapped[int | None] = mapped_column(ForeignKey("messages.id"))

    message: Mapped[Message] = relationship(foreign_keys=[message_id])
    notice: Mapped[Message | None] = relationship(foreign_keys=[notice_id])

"""PersonalPhoneApproval: the Headteacher's permission for one member of staff to use one of
their own registered numbers on one trip, over one window (policy 50, 51).

The stored state moves only through the methods below, each taking the user (or system actor)
and the reason. Whether an approval is *in force* is decided when it is read: approved, inside
its window, the trip not cancelled. An approval past its window or of a cancelled trip is
expired from that moment, whether or not ``expire`` has yet recorded it.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Enum, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tripcomms.audit.operations import SystemActor
from tripcomms.auth.models import User
from tripcomms.errors import Conflict
from tripcomms.extensions import db
from tripcomms.trips.models import Trip
from tripcomms.types import UTCDateTime, utcnow

REASON_MAX = 500


class ApprovalState(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    REVOKED = "revoked"
    EXPIRED = "expired"

    @property
    def label(self) -> str:
        return STATE_LABELS[self]


STATE_LABELS = {
    ApprovalState.PENDING: "Waiting for the Headteacher",
    ApprovalState.APPROVED: "Approved",
    ApprovalState.DENIED: "Denied",
    ApprovalState.REVOKED: "Revoked",
    ApprovalState.EXPIRED: "Ended",
}

# The states a request can still leave; the others are final.
OPEN_STATES = (ApprovalState.PENDING, ApprovalState.APPROVED)


class Via(StrEnum):
    WEB = "web"
    SMS = "sms"


def _enum(enum_class: type[StrEnum], name: str, length: int = 16) -> Enum:
    # Stored as the value in a VARCHAR with a CHECK constraint, like the other packages' enums.
    return Enum(
        enum_class,
        native_enum=False,
        create_constraint=True,
        length=length,
        name=name,
        values_callable=lambda members: [m.value for m in members],
    )


class PersonalPhoneApproval(db.Model):
    """A request to use a personal number on a trip, and what the Headteacher made of it.

    ``number`` is kept as well as ``user_id`` (and no key to ``staff_numbers``): the user admin
    may remove the number later, and then the approval stops being in force, but its history
    stays.
    """

    __tablename__ = "personal_phone_approvals"
    __table_args__ = (
        Index("ix_personal_phone_approvals_trip_state", "trip_id", "state"),
        Index("ix_personal_phone_approvals_state_created", "state", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    trip_id: Mapped[int] = mapped_column(ForeignKey("trips.id"))
    # Whose phone it is; ``requested_by`` is who filled in the form (the office, on their behalf).
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    requested_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    number: Mapped[str] = mapped_column(String(20))  # E.164
    reason: Mapped[str] = mapped_column(String(REASON_MAX))
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # School phones free over the window when the request was made (policy 50 asks for one first).
    school_phones_free: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[ApprovalState] = mapped_column(
        _enum(ApprovalState, "state"), default=ApprovalState.PENDING
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    decided_via: Mapped[Via | None] = mapped_column(_enum(Via, "decided_via", 8))
    # The conditions of an approval, or the reason for a denial.
    decision_note: Mapped[str] = mapped_column(String(REASON_MAX), default="")

    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    revoke_reason: Mapped[str] = mapped_column(String(REASON_MAX), default="")

    expired_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    expiry_reason: Mapped[str] = mapped_column(String(100), default="")

    # The first text relayed from or to the number under this approval.
    first_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    trip: Mapped[Trip] = relationship()
    user: Mapped[User] = relationship(foreign_keys=[user_id])
    requested_by: Mapped[User | None] = relationship(foreign_keys=[requested_by_id])
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id])
    revoked_by: Mapped[User | None] = relationship(foreign_keys=[revoked_by_id])

    def __repr__(self) -> str:
        return f"<PersonalPhoneApproval {self.id} trip={self.trip_id} {self.state}>"

    # --- Reading ----------------------------------------------------------------------------

    def ending_reason(self, moment: datetime) -> str | None:
        """Why an open request has ended by ``moment`` ("trip cancelled", "window ended"), or
        None while it still stands."""
        if self.trip.cancelled_at is not None and self.trip.cancelled_at <= moment:
            return "trip cancelled"
        if moment >= self.ends_at:
            return "window ended"
        return None

    def state_at(self, moment: datetime) -> ApprovalState:
        """The state as it stands at ``moment``: an open request that has ended is expired."""
        if self.state in OPEN_STATES and self.ending_reason(moment) is not None:
            return ApprovalState.EXPIRED
        return self.state

    def in_force_at(self, moment: datetime) -> bool:
        """Approved, inside its window, the trip not cancelled."""
        return (
            self.state_at(moment) == ApprovalState.APPROVED
            and self.starts_at <= moment < self.ends_at
        )

    @property
    def current_state(self) -> ApprovalState:
        return self.state_at(utcnow())

    @property
    def in_force(self) -> bool:
        return self.in_force_at(utcnow())

    @property
    def decision_seconds(self) -> float | None:
        if self.decided_at is None:
            return None
        return (self.decided_at - self.created_at).total_seconds()

    # --- Transitions: each checks where it starts from, and notes who, when and why ---------

    def _require(self, *states: ApprovalState, doing: str) -> None:
        if self.state not in states:
            raise Conflict(f"this request is already {self.state.value}; it cannot be {doing}")

    def _require_standing(self, at: datetime, doing: str) -> None:
        ended = self.ending_reason(at)
        if ended is not None:
            raise Conflict(f"this request has ended ({ended}); it cannot be {doing}")

    def _decide(self, state: ApprovalState, user: User, note: str, via: Via, at: datetime) -> None:
        self._require(ApprovalState.PENDING, doing="decided again")
        self._require_standing(at, "decided")
        self.state = state
        self.decided_at = at
        self.decided_by_id = user.id
        self.decided_via = via
        self.decision_note = note

    def approve(self, user: User, conditions: str, *, via: Via, at: datetime) -> None:
        """Pending to approved, with the Headteacher's conditions (may be empty). Raises
        Conflict from any other state, or once the window has ended or the trip is cancelled."""
        self._decide(ApprovalState.APPROVED, user, conditions, via, at)

    def deny(self, user: User, reason: str, *, via: Via, at: datetime) -> None:
        """Pending to denied, with the reason. Raises Conflict like ``approve``."""
        self._decide(ApprovalState.DENIED, user, reason, via, at)

    def revoke(self, user: User, reason: str, *, at: datetime) -> None:
        """Approved to revoked. Raises Conflict from any other state, or once it has ended."""
        self._require(ApprovalState.APPROVED, doing="revoked")
        self._require_standing(at, "revoked")
        self.state = ApprovalState.REVOKED
        self.revoked_at = at
        self.revoked_by_id = user.id
        self.revoke_reason = reason

    def expire(self, actor: User | SystemActor, reason: str, *, at: datetime) -> None:
        """Pending or approved to expired, once its window has ended or its trip is cancelled.
        ``actor`` is whoever noticed (the clock, as a rule). Raises Conflict from a final
        state."""
        self._require(*OPEN_STATES, doing="ended again")
        self.state = ApprovalState.EXPIRED
        self.expired_at = at
        self.expiry_reason = reason

"""State changes for personal-phone approvals (policy 50, 51).

Each operation takes the acting user (or a system actor), checks the rule, moves the approval
through its model method, writes the audit event and flushes; none commits. Texts to the
Headteacher and to the phone's owner are pending ``Message`` rows from NOTIFY_FROM, sent by the
outbox after the caller's commit.

Audit data holds ids, times and flags, never a phone number or a reason's text.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select, update

from tripcomms.approvals.models import (
    OPEN_STATES,
    REASON_MAX,
    ApprovalState,
    PersonalPhoneApproval,
    Via,
)
from tripcomms.approvals.queries import free_school_phones
from tripcomms.audit.operations import SYSTEM, TWILIO, SystemActor, record
from tripcomms.auth.models import Role, StaffNumber, User, UserRole
from tripcomms.errors import Conflict, InvalidInput, PolicyError
from tripcomms.extensions import db
from tripcomms.mobile import mask_number, normalise_number
from tripcomms.phones.queries import describe_period
from tripcomms.relay.endpoints import Endpoint
from tripcomms.relay.models import Message
from tripcomms.relay.notify import queue_notification
from tripcomms.relay.numbers import relay_window
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow

Actor = User | SystemActor

# The reason as quoted in the Headteacher's text: enough to decide on, short enough for SMS.
SMS_REASON_MAX = 120


# --- Small checks ---------------------------------------------------------------------------


def _clean(value: str | None, field: str, label: str, *, required: bool) -> str:
    cleaned = " ".join((value or "").split())
    if required and not cleaned:
        raise InvalidInput(f"{label} is required", field=field)
    if len(cleaned) > REASON_MAX:
        raise InvalidInput(f"{label} is at most {REASON_MAX} characters", field=field)
    return cleaned


def _short(text: str, limit: int = SMS_REASON_MAX) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


def _locked(approval: PersonalPhoneApproval) -> PersonalPhoneApproval:
    """The approval re-read under a lock, so that two decisions on it (on the web and by SMS
    at once) take turns and the second sees the first: a row lock on PostgreSQL; on SQLite a
    write, which takes the database's write lock."""
    table = PersonalPhoneApproval.__table__
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(
            update(table).where(table.c.id == approval.id).values(state=table.c.state)
        )
    else:
        db.session.execute(select(table.c.id).where(table.c.id == approval.id).with_for_update())
    fresh = db.session.scalar(
        select(PersonalPhoneApproval)
        .where(PersonalPhoneApproval.id == approval.id)
        .execution_options(populate_existing=True)
    )
    assert fresh is not None  # approvals are never deleted
    return fresh


def _lock_requests(trip: Trip) -> None:
    """Make requests for the same trip take turns until this transaction ends, so that a
    request sent twice at once (a double click) finds the first one and is refused: a row lock
    on the trip on PostgreSQL; on SQLite a write, which takes the database's write lock and
    starts from what the writer before committed."""
    table = Trip.__table__
    if db.session.get_bind().dialect.name == "sqlite":
        db.session.execute(update(table).where(table.c.id == trip.id).values(id=table.c.id))
    else:
        db.session.execute(select(table.c.id).where(table.c.id == trip.id).with_for_update())


def _check_decider(actor: Actor, approval: PersonalPhoneApproval) -> User:
    """The Headteacher, and not the owner of the phone. Raises PolicyError."""
    if not isinstance(actor, User) or not actor.has_role(Role.HEAD):
        raise PolicyError("only the Headteacher decides personal-phone requests (policy 50)")
    if actor.id == approval.user_id:
        raise PolicyError(
            "you cannot decide a request to use your own phone; another Headteacher must"
        )
    return actor


def _window(
    trip: Trip, starts_at: datetime | None, ends_at: datetime | None, at: datetime
) -> tuple[datetime, datetime]:
    """The requested window, by default the trip's relay window, never beyond it.
    Raises InvalidInput against the field at fault."""
    relay = relay_window(trip)
    starts = starts_at or relay.opens_at
    ends = ends_at or relay.closes_at
    allowed = describe_period(relay.opens_at, relay.closes_at)
    if starts < relay.opens_at:
        raise InvalidInput(
            f"the window must lie within the trip's relay window, {allowed}", field="starts_at"
        )
    if ends > relay.closes_at:
        raise InvalidInput(
            f"the window must lie within the trip's relay window, {allowed}", field="ends_at"
        )
    if ends <= starts:
        raise InvalidInput("the end must be after the start", field="ends_at")
    if ends <= at:
        raise InvalidInput("that window is already over", field="ends_at")
    return starts, ends


def head_users() -> list[User]:
    """Active users who hold the Headteacher's role, by name."""
    return list(
        db.session.scalars(
            select(User)
            .join(UserRole, UserRole.user_id == User.id)
            .where(UserRole.role == Role.HEAD, User.active.is_(True))
            .order_by(User.name, User.id)
        )
    )


# --- Requesting -----------------------------------------------------------------------------


def request_approval(
    actor: Actor,
    trip: Trip,
    owner: User,
    number: str,
    reason: str,
    *,
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
    at: datetime | None = None,
) -> PersonalPhoneApproval:
    """Ask the Headteacher to let ``owner`` use ``number`` on ``trip`` over a window (by
    default the trip's relay window). Notes how many school phones are free over it, and
    texts every Headteacher with a registered number (but the owner) from NOTIFY_FROM.

    A leader asks for themselves; the office (or a system actor) may ask on anyone's behalf.
    Raises PolicyError when the actor may not ask for the owner, the owner is not on the trip's
    staff or the number is not registered to them; InvalidInput for a missing reason or a
    window outside the trip's relay window or already over; Conflict when the trip is
    cancelled or an open request for the same phone overlaps the window.
    """
    at = at or utcnow()
    if isinstance(actor, User) and actor.id != owner.id and not actor.has_role(Role.OFFICE):
        raise PolicyError("you may ask only for your own phone; the office may ask for others")
    if trip.cancelled_at is not None:
        raise Conflict("this trip is cancelled")
    if owner.id not in trip.staff_ids:
        raise PolicyError(f"{owner.name} is not on this trip's staff", field="number")
    if not owner.active:
        raise PolicyError(f"{owner.name}'s account is not active", field="number")
    try:
        number = normalise_number(number)
    except InvalidInput as err:
        raise InvalidInput(err.message, field="number") from None
    if number not in {n.number for n in owner.personal_numbers}:
        raise PolicyError(
            f"that number is not registered to {owner.name}; the administrator registers "
            "personal numbers first",
            field="number",
        )
    reason = _clean(reason, "reason", "a reason", required=True)
    starts, ends = _window(trip, starts_at, ends_at, at)
    _lock_requests(trip)
    clash = db.session.scalar(
        select(PersonalPhoneApproval).where(
            PersonalPhoneApproval.trip_id == trip.id,
            PersonalPhoneApproval.number == number,
            PersonalPhoneApproval.state.in_(OPEN_STATES),
            PersonalPhoneApproval.starts_at < ends,
            PersonalPhoneApproval.ends_at > starts,
            PersonalPhoneApproval.ends_at > at,
        )
    )
    if clash is not None:
        raise Conflict(
            f"there is already a request for this phone on this trip over that time "
            f"(request {clash.id}, {clash.state.value})"
        )
    free = free_school_phones(trip, starts, ends)
    approval = PersonalPhoneApproval(
        trip=trip,
        user=owner,
        requested_by_id=actor.id if isinstance(actor, User) else None,
        number=number,
        reason=reason,
        starts_at=starts,
        ends_at=ends,
        school_phones_free=len(free),
        state=ApprovalState.PENDING,
        created_at=at,
    )
    db.session.add(approval)
    db.session.flush()
    texts = _ask_heads(approval)
    db.session.flush()
    record(
        actor,
        "approval.requested",
        approval,
        trip_id=trip.id,
        user_id=owner.id,
        starts_at=starts,
        ends_at=ends,
        school_phones_free=len(free),
        on_behalf=isinstance(actor, User) and actor.id != owner.id,
        texts=[m.id for m in texts],
    )
    return approval


def _ask_heads(approval: PersonalPhoneApproval) -> list[Message]:
    """Text each Headteacher's registered numbers, but not the owner's own: they cannot decide."""
    free = " A school phone is free then." if approval.school_phones_free else ""
    body = (
        f"Trip {approval.trip.title}: {approval.user.name} asks to use a personal phone "
        f"({_short(approval.reason)}).{free} "
        f"Reply APPROVE {approval.id} or DENY {approval.id} <reason>."
    )
    texts = []
    for head in head_users():
        if head.id == approval.user_id:
            continue
        for staff_number in head.personal_numbers:
            message = queue_notification(
                staff_number.number, body, trip=approval.trip, staff_id=head.id
            )
            if message is not None:
                texts.append(message)
    return texts


def _tell_owner(approval: PersonalPhoneApproval, body: str) -> Message | None:
    return queue_notification(approval.number, body, trip=approval.trip, staff_id=approval.user_id)


# --- Deciding -------------------------------------------------------------------------------


def approve(
    actor: Actor,
    approval: PersonalPhoneApproval,
    conditions: str = "",
    *,
    via: Via = Via.WEB,
    message: Message | None = None,
    at: datetime | None = None,
) -> PersonalPhoneApproval:
    """The Headteacher approves, with optional conditions; the owner is told by text.

    ``message`` is the SMS that decided it, if one did. Raises PolicyError when the actor is
    not the Headteacher or owns the phone; InvalidInput for over-long conditions; Conflict when
    the request is no longer pending, its window has ended or its trip is cancelled.
    """
    at = at or utcnow()
    head = _check_decider(actor, approval)
    conditions = _clean(conditions, "conditions", "conditions", required=False)
    approval = _locked(approval)
    approval.approve(head, conditions, via=via, at=at)
    period = describe_period(approval.starts_at, approval.ends_at)
    told = _tell_owner(
        approval,
        f"{approval.trip.title}: the Headteacher approved your own phone "
        f"({mask_number(approval.number)}) for {period}. Parents' texts come to it from the "
        "trip number; reply #code to answer. Your number is never shown to parents."
        + (f" Conditions: {_short(conditions)}" if conditions else ""),
    )
    _record_decision(head, "approval.approved", approval, via, message, told)
    return approval


def deny(
    actor: Actor,
    approval: PersonalPhoneApproval,
    reason: str,
    *,
    via: Via = Via.WEB,
    message: Message | None = None,
    at: datetime | None = None,
) -> PersonalPhoneApproval:
    """The Headteacher refuses, with a reason; the owner is told by text.

    Raises InvalidInput when the reason is missing, otherwise like ``approve``.
    """
    at = at or utcnow()
    head = _check_decider(actor, approval)
    reason = _clean(reason, "reason", "a reason", required=True)
    approval = _locked(approval)
    approval.deny(head, reason, via=via, at=at)
    told = _tell_owner(
        approval,
        f"{approval.trip.title}: the Headteacher did not approve your own phone: "
        f"{_short(reason)}. Use a school phone; the office issues them (policy 50).",
    )
    _record_decision(head, "approval.denied", approval, via, message, told)
    return approval


def _record_decision(
    head: User,
    action: str,
    approval: PersonalPhoneApproval,
    via: Via,
    message: Message | None,
    told: Message | None,
) -> None:
    db.session.flush()
    record(
        head,
        action,
        approval,
        trip_id=approval.trip_id,
        user_id=approval.user_id,
        via=via,
        sms_id=message.id if message is not None else None,
        decision_seconds=approval.decision_seconds,
        note=bool(approval.decision_note),
        school_phones_free=approval.school_phones_free,
        told=told.id if told is not None else None,
    )


def revoke(
    actor: Actor,
    approval: PersonalPhoneApproval,
    reason: str,
    *,
    at: datetime | None = None,
) -> PersonalPhoneApproval:
    """The Headteacher withdraws an approval before its end; from now the number's texts are
    refused like any unapproved staff phone. The owner is told by text.

    Raises PolicyError when the actor is not the Headteacher, InvalidInput when the reason is
    missing, Conflict when it is not approved or has already ended.
    """
    at = at or utcnow()
    if not isinstance(actor, User) or not actor.has_role(Role.HEAD):
        raise PolicyError("only the Headteacher revokes a personal-phone approval (policy 50)")
    reason = _clean(reason, "reason", "a reason", required=True)
    approval = _locked(approval)
    approval.revoke(actor, reason, at=at)
    told = _tell_owner(
        approval,
        f"{approval.trip.title}: the Headteacher has withdrawn the approval for your own "
        f"phone: {_short(reason)}. Texts from it now reach no parent; use a school phone.",
    )
    db.session.flush()
    record(
        actor,
        "approval.revoked",
        approval,
        trip_id=approval.trip_id,
        user_id=approval.user_id,
        first_used=approval.first_used_at is not None,
        told=told.id if told is not None else None,
    )
    return approval


# --- The clock ------------------------------------------------------------------------------


def expire_due(actor: Actor = SYSTEM, at: datetime | None = None) -> list[PersonalPhoneApproval]:
    """Record as expired every pending or approved request whose window has ended or whose
    trip is cancelled by ``at``. Their state already reads as expired; this writes it down,
    once, with an audit event each. Returns them."""
    at = at or utcnow()
    due = db.session.scalars(
        select(PersonalPhoneApproval)
        .join(Trip, Trip.id == PersonalPhoneApproval.trip_id)
        .where(
            PersonalPhoneApproval.state.in_(OPEN_STATES),
            (PersonalPhoneApproval.ends_at <= at) | (Trip.cancelled_at <= at),
        )
        .order_by(PersonalPhoneApproval.id)
    ).all()
    expired = []
    for candidate in due:
        approval = _locked(candidate)
        reason = approval.ending_reason(at)
        if approval.state not in OPEN_STATES or reason is None:
            continue  # another process got there first
        was = approval.state
        approval.expire(actor, reason, at=at)
        db.session.flush()
        record(
            actor,
            "approval.expired",
            approval,
            trip_id=approval.trip_id,
            user_id=approval.user_id,
            was=was,
            reason=reason,
        )
        expired.append(approval)
    return expired


# --- The relay ------------------------------------------------------------------------------


def note_first_use(endpoint: Endpoint, message: Message) -> bool:
    """Record the first text relayed from or to a personal number under its approval.
    Returns True when this was it. Safe against two texts at once: only one update matches."""
    if not endpoint.personal or endpoint.source_id is None:
        return False
    at = message.created_at or utcnow()
    table = PersonalPhoneApproval.__table__
    claimed = db.session.execute(
        update(table)
        .where(table.c.id == endpoint.source_id, table.c.first_used_at.is_(None))
        .values(first_used_at=at)
    )
    if claimed.rowcount != 1:
        return False
    approval = db.session.get(PersonalPhoneApproval, endpoint.source_id)
    assert approval is not None
    db.session.refresh(approval, ["first_used_at"])
    if message.id is None:
        db.session.flush()
    record(
        TWILIO,
        "approval.first_used",
        approval,
        trip_id=approval.trip_id,
        user_id=approval.user_id,
        message_id=message.id,
        direction=message.direction,
    )
    return True


def staff_user_for_number(number: str) -> User | None:
    """The active user whose registered personal number this is, if any."""
    return db.session.scalar(
        select(User)
        .join(StaffNumber, StaffNumber.user_id == User.id)
        .where(StaffNumber.number == number, User.active.is_(True))
    )

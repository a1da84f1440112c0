"""Safeguarding's state changes: concerns, late-reply escalation, retention.

Each operation takes the acting user (or a system actor), checks, changes rows, writes its
audit event and flushes; the view or command that called it commits (design rule 1).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import String, and_, case, cast, exists, func, literal, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from tripcomms.audit.access import CONCERN_REPORTERS, log_trips, visible_messages
from tripcomms.audit.operations import SystemActor, record
from tripcomms.auth.models import User
from tripcomms.errors import InvalidInput, NotFound, PolicyError
from tripcomms.extensions import db
from tripcomms.relay.models import TO_CONTACT_KINDS, Broadcast, Direction, Kind, Message
from tripcomms.safeguarding import notices
from tripcomms.safeguarding.models import (
    MAX_TEXT,
    Category,
    Concern,
    ConcernNotice,
    ConcernStatus,
    ConcernUpdate,
    Outcome,
    ResponseEscalation,
    text_digest,
)
from tripcomms.safeguarding.queries import held_condition, is_handler
from tripcomms.safeguarding.responses import target, waiting_texts
from tripcomms.trips.models import Contact, Trip, TripContact
from tripcomms.types import utcnow

Actor = User | SystemActor
RETENTION = SystemActor("retention")


# --- Concerns ---------------------------------------------------------------------------------


def _new_concern(
    actor: Actor,
    *,
    category: Category,
    description: str,
    trip: Trip | None,
    message: Message | None,
    contact: Contact | None,
    rule: str = "",
) -> Concern:
    concern = Concern(
        trip=trip,
        message=message,
        contact=contact,
        category=category,
        description=description,
        raised_by_id=actor.id if isinstance(actor, User) else None,
        rule=rule,
        status=ConcernStatus.OPEN,
    )
    db.session.add(concern)
    db.session.add(
        ConcernUpdate(
            concern=concern,
            actor_id=concern.raised_by_id,
            from_status=None,
            to_status=ConcernStatus.OPEN,
            reason=description,
        )
    )
    db.session.flush()
    record(
        actor,
        "concern.raised",
        concern,
        **concern.audit_data(),
        rule=rule or None,
        description_digest=text_digest(description),
    )
    _notify_handlers(concern)
    return concern


def _notify_handlers(concern: Concern) -> list[Message]:
    """Text the DSL and the Headteacher (setting CONCERN_SMS) that a concern is waiting."""
    if not current_app.config["CONCERN_SMS"]:
        return []
    cfg = current_app.config
    where = f" on {concern.trip.title}" if concern.trip else ""
    body = (
        f"{cfg['SCHOOL_NAME']}: new concern #{concern.id} ({concern.category_label}){where}. "
        f"Sign in to tripcomms to see it: {cfg['PUBLIC_BASE_URL']}/concerns/{concern.id}"
    )
    sent = []
    for user, number in notices.handler_numbers():
        notice = notices.queue_notice(
            number, body, trip=concern.trip, staff=user, note=f"concern #{concern.id}"
        )
        if notice is not None:
            sent.append(notice)
    if sent:
        db.session.flush()
        db.session.add_all(ConcernNotice(concern_id=concern.id, message_id=m.id) for m in sent)
        concern.notified = True
        record(
            SystemActor("safeguarding"),
            "concern.notified",
            concern,
            notice_ids=[m.id for m in sent],
        )
    return sent


def _clean_description(description: str | None) -> str:
    text = (description or "").strip()
    if not text:
        raise InvalidInput("describe what worries you", field="description")
    if len(text) > MAX_TEXT:
        raise InvalidInput(f"keep it under {MAX_TEXT:,} characters", field="description")
    return text


def _category(value: Category | str) -> Category:
    try:
        return Category(value)
    except ValueError:
        raise InvalidInput("choose what kind of concern this is", field="category") from None


def report_concern(
    user: User,
    *,
    category: Category | str,
    description: str,
    message: Message | None = None,
    trip: Trip | None = None,
    contact: Contact | None = None,
) -> Concern:
    """A member of staff reports a concern about a message, or about a parent's thread on a
    trip (``trip`` and ``contact``), for the safeguarding lead (policy 19, 37, 60).

    Raises PolicyError for a role that reports nothing (auditors), NotFound when the user may
    not see the message or thread, InvalidInput for a missing category or description.
    """
    if not user.has_role(*CONCERN_REPORTERS):
        raise PolicyError("your role does not report concerns; tell the Headteacher (policy 19)")
    chosen = _category(category)
    text = _clean_description(description)
    if message is not None:
        seen = db.session.scalar(visible_messages(user).where(Message.id == message.id))
        if seen is None:
            raise NotFound("there is no such message, or it is not yours to see")
        trip, contact = message.trip, message.contact
    elif trip is not None and contact is not None:
        may_see = db.session.scalar(log_trips(user).where(Trip.id == trip.id))
        on_trip = db.session.scalar(
            select(
                exists().where(TripContact.trip_id == trip.id, TripContact.contact_id == contact.id)
            )
        )
        if may_see is None or not on_trip:
            raise NotFound("there is no such conversation, or it is not yours to see")
    else:
        raise InvalidInput("say which message or conversation the concern is about")
    return _new_concern(
        user, category=chosen, description=text, trip=trip, message=message, contact=contact
    )


def _require_handler(user: User) -> None:
    if not is_handler(user):
        raise PolicyError(
            "only the safeguarding lead and the Headteacher handle concerns (policy 19)"
        )


def start_investigating(user: User, concern: Concern, reason: str) -> ConcernUpdate:
    """Open -> investigating. Raises PolicyError (not a handler), Conflict, InvalidInput."""
    _require_handler(user)
    return concern.investigate(user, reason)


def close_concern(user: User, concern: Concern, outcome: Outcome | str, reason: str):
    """-> closed with an outcome. Raises PolicyError, Conflict, InvalidInput."""
    _require_handler(user)
    return concern.close(user, reason, outcome)


def reopen_concern(user: User, concern: Concern, reason: str) -> ConcernUpdate:
    """Closed -> investigating. Raises PolicyError, Conflict, InvalidInput."""
    _require_handler(user)
    return concern.reopen(user, reason)


# --- Concerns the relay raises ---------------------------------------------------------------

RELAY = SystemActor("twilio")


def _pictures(message: Message) -> str:
    count = message.num_media
    kinds = ", ".join(sorted(set(message.media_types))) or "unknown type"
    return (
        f"{count} picture{'s' if count != 1 else ''} or file{'s' if count != 1 else ''} ({kinds})"
    )


def concerns_for_inbound(message: Message) -> list[Concern]:
    """Concerns an inbound text raises by itself, in the relay's transaction: a picture
    (policy 31, 71), a pupil's own number (policy 28, 42, 43), or a staff phone with no
    approval that keeps texting (policy 50, 51). One concern per text at most."""
    reasons: list[tuple[str, Category, str]] = []
    if message.num_media:
        reasons.append(
            (
                "media",
                Category.PICTURE,
                f"{_pictures(message)} received; not fetched, saved or forwarded (policy 31, 71).",
            )
        )
    if message.kind == Kind.FROM_PUPIL:
        reasons.append(
            (
                "pupil",
                Category.SAFEGUARDING,
                "A text came from a pupil's own number; it was not relayed and the pupil was "
                "told to talk to staff (policy 28, 42, 43).",
            )
        )
    if message.kind == Kind.FROM_STAFF_UNAPPROVED and _unapproved_repeats(message):
        cfg = current_app.config
        reasons.append(
            (
                "unapproved_phone",
                Category.MISUSE,
                f"{cfg['UNAPPROVED_REPEAT_COUNT']} or more texts within "
                f"{cfg['UNAPPROVED_REPEAT_MINUTES']} minutes from a staff phone with no "
                "approval in force; none was relayed (policy 50, 51).",
            )
        )
    if not reasons:
        return []
    rule, category, _ = reasons[0]
    description = " ".join(text for _, _, text in reasons)
    return [
        _new_concern(
            RELAY,
            category=category,
            description=description,
            trip=message.trip,
            message=message,
            contact=message.contact,
            rule=rule,
        )
    ]


def _unapproved_repeats(message: Message) -> bool:
    """This staff number reached the limit in the window, with no such concern raised about
    it within the window already."""
    cfg = current_app.config
    since = message.created_at - timedelta(minutes=cfg["UNAPPROVED_REPEAT_MINUTES"])
    same_sender = and_(
        Message.from_number == message.from_number,
        Message.kind == Kind.FROM_STAFF_UNAPPROVED,
        Message.created_at > since,
    )
    count = db.session.scalar(select(func.count()).select_from(Message).where(same_sender))
    if count < cfg["UNAPPROVED_REPEAT_COUNT"]:
        return False
    already = db.session.scalar(
        select(
            exists()
            .where(Concern.rule == "unapproved_phone", Concern.created_at > since)
            .where(Concern.message_id == Message.id, Message.from_number == message.from_number)
        )
    )
    return not already


# --- Late replies ----------------------------------------------------------------------------


@dataclass
class EscalationResult:
    escalated: list[ResponseEscalation]
    texted: int


def escalate_late_replies(actor: Actor, now: datetime | None = None) -> EscalationResult:
    """Escalate each parent's text still unanswered after twice the response target, once:
    a ``ResponseEscalation`` row, and (setting ESCALATE_BY_SMS) a text to the office phone.

    Safe to run again and from several processes: a text already escalated is skipped, and of
    two processes escalating the same text at once only one inserts its row.
    """
    now = now or utcnow()
    cfg = current_app.config
    done: list[ResponseEscalation] = []
    texted = 0
    late = waiting_texts(older_than=2 * target(), now=now)
    already = set(
        db.session.scalars(
            select(ResponseEscalation.message_id).where(
                ResponseEscalation.message_id.in_([w.message.id for w in late])
            )
        )
    )
    for waiting in late:
        message = waiting.message
        if message.id in already:
            continue
        escalation = _claim_escalation(message.id, now)
        if escalation is None:
            continue  # another process escalated it first
        notice = None
        phone = notices.office_phone()
        if cfg["ESCALATE_BY_SMS"] and phone:
            code = db.session.scalar(
                select(TripContact.code).where(
                    TripContact.trip_id == message.trip_id,
                    TripContact.contact_id == message.contact_id,
                )
            )
            notice = notices.queue_notice(
                phone,
                f"{cfg['SCHOOL_NAME']}: a text from parent #{code} on {message.trip.title} has "
                f"waited {waiting.minutes} minutes for a staff reply (target "
                f"{cfg['RESPONSE_TARGET_MINUTES']}). Please check with the trip staff.",
                trip=message.trip,
                note="late reply",
            )
        if notice is not None:
            db.session.flush()
            escalation.notice_id = notice.id
            texted += 1
        record(
            actor,
            "response.escalated",
            escalation,
            message_id=message.id,
            trip_id=message.trip_id,
            waited_minutes=waiting.minutes,
            notice_id=escalation.notice_id,
        )
        done.append(escalation)
    return EscalationResult(done, texted)


def _claim_escalation(message_id: int, now: datetime) -> ResponseEscalation | None:
    """Insert the escalation row unless one exists: the database decides between processes
    (INSERT ... ON CONFLICT DO NOTHING on the unique message id), so no text is escalated
    twice and no process fails for trying."""
    dialect = db.engine.dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    new_id = db.session.scalar(
        insert(ResponseEscalation)
        .values(message_id=message_id, escalated_at=now)
        .on_conflict_do_nothing(index_elements=["message_id"])
        .returning(ResponseEscalation.id)
    )
    return db.session.get(ResponseEscalation, new_id) if new_id is not None else None


# --- Retention -------------------------------------------------------------------------------

# Kinds whose sender (inbound) or recipient (outbound) is someone outside the school: their
# numbers are personal data that retention removes.
_OUTSIDE_SENDER = (Kind.FROM_CONTACT, Kind.FROM_PUPIL, Kind.FROM_UNKNOWN, Kind.NO_TRIP)
_OUTSIDE_RECIPIENT = (*TO_CONTACT_KINDS, Kind.AUTO_REPLY)
MASK = "•••"


@dataclass
class RetentionResult:
    cutoff: datetime
    messages: int  # bodies (and outside numbers) redacted
    held: int  # messages kept whole because a concern holds them
    broadcasts: int
    contacts: int


def _masked(column):
    """The last three digits of a number, as the log shows numbers it does not need."""
    return literal(MASK) + func.substr(column, func.length(column) - 2)


def run_retention(actor: Actor, now: datetime | None = None) -> RetentionResult:
    """Redact what the school no longer needs to keep (RETENTION_DAYS after a trip's relay
    window closed): message bodies, parents' and strangers' numbers on those messages,
    broadcast texts, and the numbers of contacts on no trip still within retention.

    Messages a concern holds are kept whole. Texts that reached no trip count from when they
    arrived. The audit trail holds no bodies or numbers, so it is untouched and its chain still
    verifies. Running it again changes nothing more.
    """
    now = now or utcnow()
    cfg = current_app.config
    keep = timedelta(days=cfg["RETENTION_DAYS"])
    cutoff = now - keep
    # A trip's window closes RELAY_GRACE_AFTER after it ends.
    expired_trips = select(Trip.id).where(Trip.ends_at < cutoff - cfg["RELAY_GRACE_AFTER"])
    in_scope = and_(
        Message.body_redacted_at.is_(None),
        or_(
            Message.trip_id.in_(expired_trips),
            and_(Message.trip_id.is_(None), Message.created_at < cutoff),
        ),
    )
    held = db.session.scalar(
        select(func.count()).select_from(Message).where(in_scope, held_condition())
    )
    outside_sender = and_(Message.direction == Direction.IN, Message.kind.in_(_OUTSIDE_SENDER))
    outside_recipient = and_(
        Message.direction == Direction.OUT, Message.kind.in_(_OUTSIDE_RECIPIENT)
    )
    redacted = db.session.execute(
        update(Message)
        .where(in_scope, not_(held_condition()))
        .values(
            body="",
            body_redacted_at=now,
            from_number=case(
                (outside_sender, _masked(Message.from_number)), else_=Message.from_number
            ),
            to_number=case(
                (outside_recipient, _masked(Message.to_number)), else_=Message.to_number
            ),
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    held_broadcasts = select(Message.broadcast_id).where(
        Message.broadcast_id.is_not(None), held_condition()
    )
    broadcasts = db.session.execute(
        update(Broadcast)
        .where(
            Broadcast.trip_id.in_(expired_trips),
            Broadcast.body != "",
            Broadcast.id.not_in(held_broadcasts),
        )
        .values(body="")
        .execution_options(synchronize_session=False)
    ).rowcount
    contacts = _redact_contacts(expired_trips)
    db.session.expire_all()
    result = RetentionResult(cutoff, redacted, held, broadcasts, contacts)
    record(
        actor,
        "retention.run",
        cutoff=cutoff.isoformat(),
        retention_days=cfg["RETENTION_DAYS"],
        messages_redacted=redacted,
        messages_held=held,
        broadcasts_redacted=broadcasts,
        contacts_redacted=contacts,
    )
    return result


def _redact_contacts(expired_trips) -> int:
    """Numbers of contacts on no trip still within retention, unless a concern holds them."""
    current = select(TripContact.contact_id).where(TripContact.trip_id.not_in(expired_trips))
    held_contacts = select(Concern.contact_id).where(Concern.contact_id.is_not(None))
    held_messages = select(Message.contact_id).where(
        Message.contact_id.is_not(None), held_condition()
    )
    on_some_trip = select(TripContact.contact_id)
    return db.session.execute(
        update(Contact)
        .where(
            Contact.id.in_(on_some_trip),
            Contact.id.not_in(current),
            Contact.id.not_in(held_contacts),
            Contact.id.not_in(held_messages),
            not_(Contact.mobile.startswith(MASK)),
        )
        .values(mobile=_masked(Contact.mobile) + "/" + cast(Contact.id, String))
        .execution_options(synchronize_session=False)
    ).rowcount

"""The relay's state changes: storing what arrives, and writing every message it causes.

Every text in and out is a ``Message`` row. An inbound text and all the messages it causes are
written in one transaction by ``handle_inbound``; outbound rows start ``pending`` and the
outbox sends them after the commit. Every message to a parent is written by
``_queue_to_contact``: it is sent from the trip's number and its body passes the content rules
(design rule 4), whatever route it came by.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache, lru_cache
from typing import Any

from flask import current_app
from sqlalchemy import Insert, Select, and_, bindparam, delete, exists, func, insert, select
from sqlalchemy.orm import make_transient_to_detached

from tripcomms.audit.operations import TWILIO, SystemActor, record
from tripcomms.auth.models import StaffNumber, User
from tripcomms.errors import Conflict, InvalidInput, NotFound, PolicyError
from tripcomms.extensions import db, plain_rows
from tripcomms.localtime import format_local
from tripcomms.mobile import normalise_number
from tripcomms.relay import commands, notify
from tripcomms.relay.endpoints import (
    Endpoint,
    endpoints_for,
    note_personal_use,
    school_numbers,
)
from tripcomms.relay.models import (
    FAILED_STATUSES,
    FINAL_STATUSES,
    STATUS_RANK,
    Broadcast,
    DeliveryEvent,
    Direction,
    Kind,
    Message,
    MessageTemplate,
    OptOut,
    ProxyNumber,
    ReadMarker,
    SendKey,
    Status,
    body_digest,
)
from tripcomms.relay.numbers import relay_window, trip_for_number, trip_number
from tripcomms.safeguarding.content import check_outbound
from tripcomms.safeguarding.operations import concerns_for_inbound
from tripcomms.trips.models import Contact, ContactLink, Pupil, Trip, TripContact, TripPupil
from tripcomms.types import utcnow

Actor = User | SystemActor
MAX_BODY = commands.MAX_BODY


# --- Who is who -------------------------------------------------------------------------------


@dataclass
class Recipient:
    """A parent or carer on a trip, with what the relay needs to know about them."""

    code: int
    contact: Contact
    pupils: list[str] = field(default_factory=list)  # their children on the trip: "Sam J."
    no_contact: bool = False
    opted_out: bool = False

    @property
    def label(self) -> str:
        """ "#12 Mary Jones (Sam J.)"."""
        names = ", ".join(self.pupils)
        return f"#{self.code} {self.contact.name}" + (f" ({names})" if names else "")

    @property
    def can_receive(self) -> bool:
        return not (self.no_contact or self.opted_out)


@cache
def _recipients_query(by: str | None) -> Select:
    """The query behind ``_recipients``: a row per active contact on the trip and linked child
    (outer joins, so a contact with no child on the trip still has a row), with the child only
    when they are on this trip, and whether the contact's number has opted out of this trip
    number. Parameters ``trip_id`` and ``proxy``, and ``mobile`` or ``code`` when ``by`` names
    one. Built once per variant: a parent's text runs it on every webhook.
    """
    on_trip = TripPupil.__table__.alias("on_trip")
    trip_id = bindparam("trip_id")
    query = (
        select(
            TripContact.code,
            Contact,
            on_trip.c.pupil_id,
            Pupil.first_name,
            Pupil.last_name,
            ContactLink.no_contact,
            OptOut.id,
        )
        .join(Contact, Contact.id == TripContact.contact_id)
        .outerjoin(ContactLink, ContactLink.contact_id == Contact.id)
        .outerjoin(
            on_trip,
            and_(on_trip.c.pupil_id == ContactLink.pupil_id, on_trip.c.trip_id == trip_id),
        )
        .outerjoin(Pupil, Pupil.id == on_trip.c.pupil_id)
        .outerjoin(
            OptOut,
            and_(OptOut.number == Contact.mobile, OptOut.proxy_number == bindparam("proxy")),
        )
        .where(TripContact.trip_id == trip_id, TripContact.active.is_(True))
        .order_by(TripContact.code, ContactLink.pupil_id)
    )
    if by == "mobile":
        query = query.where(Contact.mobile == bindparam("mobile"))
    elif by == "code":
        query = query.where(TripContact.code == bindparam("code"))
    return query


def _recipients(trip: Trip, proxy: str, *, mobile: str | None = None, code: int | None = None):
    """The trip's active contacts (optionally one, by number or code) as Recipients, in one
    query: their children on this trip, no contact if any of those links says so, opted out."""
    params: dict[str, object] = {"trip_id": trip.id, "proxy": proxy}
    by = None
    if mobile is not None:
        by, params["mobile"] = "mobile", mobile
    elif code is not None:
        by, params["code"] = "code", code
    result: list[Recipient] = []
    for code_, contact, pupil_id, first, last, no_contact, opt_out_id in db.session.execute(
        _recipients_query(by), params
    ):
        if not result or result[-1].code != code_:
            result.append(Recipient(code=code_, contact=contact, opted_out=opt_out_id is not None))
        if pupil_id is not None:  # a linked child on this trip
            result[-1].pupils.append(Pupil.short_name_of(first, last))
            result[-1].no_contact = result[-1].no_contact or bool(no_contact)
    return result


def staff_numbers() -> set[str]:
    return set(db.session.scalars(select(StaffNumber.number)))


def school_sim_numbers() -> set[str]:
    return school_numbers()


def allowed_numbers() -> set[str]:
    cfg = current_app.config
    allowed = set(db.session.scalars(select(ProxyNumber.number)))
    for name in ("OFFICE_PHONE", "NOTIFY_FROM"):
        # An unset or odd setting allows nothing extra.
        with contextlib.suppress(InvalidInput):
            allowed.add(normalise_number(cfg[name], mobile=False))
    return allowed


# --- Writing messages -------------------------------------------------------------------------


def _queue(
    trip: Trip | None,
    kind: Kind,
    *,
    from_number: str,
    to_number: str,
    body: str,
    caused_by: Message | None = None,
    **fields,
) -> Message:
    """A pending outbound message; the outbox sends it after the commit."""
    message = Message(
        trip=trip,
        direction=Direction.OUT,
        kind=kind,
        from_number=from_number,
        to_number=to_number,
        body=body[:MAX_BODY],
        status=Status.PENDING,
        next_attempt_at=utcnow(),
        caused_by=caused_by,
        **fields,
    )
    db.session.add(message)
    return message


class ContentBlocked(PolicyError):
    """A message to a parent broke a content rule; it is stored as blocked, never sent."""

    keeps_written = True  # the blocked message is evidence: the caller commits it

    def __init__(self, reason: str, message: Message) -> None:
        super().__init__(f"not sent: the message contains {reason}", field="body")
        self.blocked = message


def _content_violation(body: str):
    return check_outbound(
        body,
        staff_numbers=staff_numbers(),
        school_sims=school_sim_numbers(),
        allowed_numbers=allowed_numbers(),
        email_domain=current_app.config["SCHOOL_EMAIL_DOMAIN"],
    )


def _blocked(trip: Trip, proxy: str, kind: Kind, body: str, reason: str, **fields) -> Message:
    message = Message(
        trip=trip,
        direction=Direction.OUT,
        kind=kind,
        from_number=proxy,
        body=body[:MAX_BODY],
        status=Status.BLOCKED,
        note=f"blocked: {reason}",
        **fields,
    )
    db.session.add(message)
    return message


def _queue_to_contact(
    trip: Trip,
    proxy: str,
    recipient: Recipient,
    body: str,
    kind: Kind,
    **fields,
) -> Message:
    """The one way a message to a parent is written: from the trip number, rules checked."""
    assert kind in (Kind.TO_CONTACT, Kind.BROADCAST, Kind.KEYWORD_REPLY)
    return _queue(
        trip,
        kind,
        from_number=proxy,
        to_number=recipient.contact.mobile,
        body=body,
        contact=recipient.contact,
        **fields,
    )


# --- Sending from the web or by command -------------------------------------------------------


@dataclass
class SendOutcome:
    messages: list[Message]
    sent: int = 0
    opted_out: int = 0
    no_contact: int = 0
    broadcast: Broadcast | None = None

    def receipt(self) -> str:
        parts = [f"Sent to {self.sent}"]
        if self.opted_out:
            parts.append(f"{self.opted_out} opted out")
        if self.no_contact:
            parts.append(f"{self.no_contact} no contact")
        return "; ".join(parts)


def _check_body(body: str) -> str:
    text = (body or "").strip()
    if not text:
        raise InvalidInput("there is no message to send", field="body")
    if len(text) > MAX_BODY:
        raise InvalidInput(
            f"the message is {len(text):,} characters; the limit is {MAX_BODY:,}", field="body"
        )
    return text


def _proxy_or_conflict(trip: Trip) -> str:
    proxy = trip_number(trip)
    if proxy is None:
        raise Conflict("this trip has no trip number yet, so nothing can be sent")
    return proxy


def _check_rules(
    trip: Trip, proxy: str, kind: Kind, text: str, *, retry_of: Message | None = None, **fields
) -> None:
    violation = _content_violation(text)
    if violation is not None:
        blocked = _blocked(trip, proxy, kind, text, violation.reason, **fields)
        db.session.flush()
        # A blocked attempt to send a failed text again was never sent, so it is no message's
        # retry_of (a failed text is sent again at most once): the audit event names the text.
        again = {"retry_of": retry_of.id} if retry_of is not None else {}
        record(
            fields.get("staff") or TWILIO,
            "message.blocked",
            blocked,
            rule=violation.rule,
            **again,
            **blocked.audit_data(),
        )
        raise ContentBlocked(violation.reason, blocked)


def send_to_contact(
    actor: User,
    trip: Trip,
    code: int,
    body: str,
    *,
    via: str = "web",
    endpoint: str | None = None,
    caused_by: Message | None = None,
) -> SendOutcome:
    """Queue a staff text to one parent, by code. Raises InvalidInput, NotFound, Conflict, or
    ContentBlocked (the blocked message is stored; nothing reaches the parent)."""
    text = _check_body(body)
    proxy = _proxy_or_conflict(trip)
    found = _recipients(trip, proxy, code=code)
    if not found:
        raise NotFound(f"there is no #{code} on this trip; LIST shows the codes", field="body")
    recipient = found[0]
    if recipient.no_contact:
        raise PolicyError(f"#{code} {recipient.contact.name} may not receive trip messages")
    if recipient.opted_out:
        raise Conflict(f"#{code} {recipient.contact.name} has opted out of texts (STOP)")
    common = {"staff": actor, "via": via, "endpoint": endpoint, "caused_by": caused_by}
    _check_rules(
        trip,
        proxy,
        Kind.TO_CONTACT,
        text,
        contact=recipient.contact,
        to_number=recipient.contact.mobile,
        **common,
    )
    message = _queue_to_contact(trip, proxy, recipient, text, Kind.TO_CONTACT, **common)
    db.session.flush()
    record(actor, "message.queued", message, **message.audit_data())
    return SendOutcome([message], sent=1)


def broadcast(
    actor: User,
    trip: Trip,
    body: str,
    *,
    via: str = "web",
    endpoint: str | None = None,
    caused_by: Message | None = None,
    request_key: str | None = None,
) -> SendOutcome:
    """Queue a text to every parent on the trip who can receive it.

    A repeated ``request_key`` (a second click on the same confirmation) returns the first
    broadcast instead of making another. Raises like ``send_to_contact``.
    """
    if request_key:
        earlier = db.session.scalar(select(Broadcast).where(Broadcast.request_key == request_key))
        if earlier is not None:
            messages = list(
                db.session.scalars(select(Message).where(Message.broadcast_id == earlier.id))
            )
            return SendOutcome(
                messages,
                sent=earlier.recipients,
                opted_out=earlier.skipped_opted_out,
                no_contact=earlier.skipped_no_contact,
                broadcast=earlier,
            )
    text = _check_body(body)
    proxy = _proxy_or_conflict(trip)
    common = {"staff": actor, "via": via, "endpoint": endpoint, "caused_by": caused_by}
    _check_rules(trip, proxy, Kind.BROADCAST, text, to_number="", **common)
    recipients = _recipients(trip, proxy)
    if not recipients:
        raise Conflict("this trip has no parents or carers on its roster yet")
    sendable = [r for r in recipients if r.can_receive]
    item = Broadcast(
        trip=trip,
        author_id=actor.id,
        body=text,
        recipients=len(sendable),
        skipped_opted_out=sum(1 for r in recipients if r.opted_out),
        skipped_no_contact=sum(1 for r in recipients if r.no_contact and not r.opted_out),
        request_key=request_key,
    )
    db.session.add(item)
    db.session.flush()
    messages = [
        _queue_to_contact(trip, proxy, r, text, Kind.BROADCAST, broadcast_id=item.id, **common)
        for r in sendable
    ]
    db.session.flush()
    record(
        actor,
        "broadcast.queued",
        item,
        recipients=item.recipients,
        opted_out=item.skipped_opted_out,
        no_contact=item.skipped_no_contact,
        message_ids=[m.id for m in messages],
        digest=messages[0].digest if messages else None,
    )
    return SendOutcome(
        messages,
        sent=item.recipients,
        opted_out=item.skipped_opted_out,
        no_contact=item.skipped_no_contact,
        broadcast=item,
    )


# --- Inbound texts ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Inbound:
    sid: str
    from_number: str
    to_number: str
    body: str
    media_types: tuple[str, ...] = ()
    # How many characters the body had as sent, when only the first part of it is in ``body``.
    sent_length: int | None = None


@lru_cache(maxsize=4096)
def _normalised(number: str) -> str:
    """A webhook's From or To in E.164, or as sent (trimmed) when it is not a valid number.

    Kept for the numbers seen lately: the same parents and trip numbers text again and again,
    and parsing a number costs more than most of a text's database work."""
    try:
        return normalise_number(number, mobile=False)
    except InvalidInput:
        return (number or "").strip()[:20]


def already_stored(sid: str) -> bool:
    return db.session.scalar(select(exists().where(Message.twilio_sid == sid)))


def handle_inbound(inbound: Inbound, at: datetime | None = None) -> Message:
    """Store an inbound text and write every message it causes, in the current transaction.

    Returns the stored inbound message. The caller commits; a concurrent duplicate of the same
    MessageSid fails that commit on the unique sid, so it is relayed once.
    """
    at = at or utcnow()
    sender = _normalised(inbound.from_number)
    proxy = _normalised(inbound.to_number)
    message = Message(
        direction=Direction.IN,
        kind=Kind.NO_TRIP,
        from_number=sender,
        to_number=proxy,
        body=inbound.body,
        num_media=len(inbound.media_types),
        media_types=list(inbound.media_types),
        status=Status.RECEIVED,
        twilio_sid=inbound.sid,
        created_at=at,
    )
    db.session.add(message)
    caused: list[Message] = []
    # Route with reads only and write everything in the flush below: on SQLite the first write
    # takes the database's one write lock until the commit, and every other worker's webhook
    # waits for it (sleeping in SQLite's busy handler), so the lock is taken as late as can be.
    with db.session.no_autoflush:
        if proxy == notify.notify_number():
            # Not a trip's text: staff answering a notification (the Headteacher's APPROVE 17).
            caused = notify.handle_reply(message, at)
        elif (trip := trip_for_number(proxy, at)) is None:
            caused = _no_trip(message)
        else:
            message.trip = trip
            endpoints = endpoints_for(trip, at)
            if sender in endpoints:
                caused = _from_endpoint(message, trip, proxy, endpoints, sender)
            else:
                recipient = next(iter(_recipients(trip, proxy, mobile=sender)), None)
                if recipient is not None:
                    caused = _from_contact(message, trip, proxy, endpoints, recipient)
                else:
                    caused = _from_stranger(message, trip, proxy, sender, at)
            note_personal_use(endpoints, message, caused)
    if message.num_media:
        message.flagged = "media"
    if inbound.sent_length is not None and inbound.sent_length > len(inbound.body):
        # Nothing a phone sends is this long; keep what fits and say what is missing.
        message.needs_review = True
        cut = f"only the first {len(inbound.body):,} of {inbound.sent_length:,} characters kept"
        message.note = (f"{message.note}; {cut}" if message.note else cut)[:300]
    _write(message, caused)
    record(
        TWILIO,
        "message.received",
        message,
        kind=message.kind,
        digest=message.digest,
        media=message.num_media,
        caused=[m.audit_data() for m in caused],
    )
    # Pictures, pupils' numbers, unapproved staff phones: a concern for the DSL, in this
    # same transaction (policy 19, 71).
    concerns_for_inbound(message)
    return message


# Many-to-one relationships of Message and the foreign key each one sets.
_MESSAGE_LINKS = (("trip", "trip_id"), ("contact", "contact_id"), ("staff", "staff_id"))


@cache
def _insert_message() -> Insert:
    """``INSERT INTO messages``, built once. The new row's id comes back as the dialect does
    it best: SQLite's last row id, PostgreSQL's RETURNING."""
    return insert(Message.__table__)


@cache
def _message_defaults() -> tuple[tuple[str, Callable[[Any], Any] | None, Any], ...]:
    """For each column of messages but the id: its key, and its default as a callable (called
    with no context, as a flush would) or a constant."""
    columns = []
    for column in Message.__table__.columns:
        if column.key == "id":
            continue
        default = column.default
        if default is None:
            columns.append((column.key, None, None))
        elif default.is_callable:
            columns.append((column.key, default.arg, None))
        else:
            columns.append((column.key, None, default.arg))
    return tuple(columns)


def _write(inbound: Message, caused: list[Message]) -> None:
    """Write the inbound text and the messages it caused: a flush, or the same rows with
    plain INSERTs when they are all the session has to write.

    A parent's text writes two or three rows, and the ORM's unit of work (ordering, relationship
    bookkeeping) costs far more than the INSERTs do. When nothing else is pending, each row is
    inserted from the object's own values (its defaults filled in first, exactly as a flush
    would), and the object is then attached to the session as a persistent, loaded row. Any
    other change waiting in the session (an opt-out, an approval's first use) means a flush.

    On SQLite the first INSERT takes the database's write lock, which every other worker's
    write then waits for until the commit; so each row's values are made ready before its
    INSERT, straight in the object's state (it is new, so there is no history to keep), and
    the objects are attached after the last INSERT.
    """
    session = db.session
    pending = [inbound, *caused]
    if (
        session.dirty
        or session.deleted
        or len(session.new) != len(pending)
        or any(m not in session.new for m in pending)
        or any(m.caused_by not in (None, inbound) for m in caused)
    ):
        session.flush()
        return
    defaults = _message_defaults()
    for message in pending:
        state = message.__dict__
        for key, make, constant in defaults:
            if key not in state:
                state[key] = make(None) if make is not None else constant
        for relation, key in _MESSAGE_LINKS:
            related = state.get(relation)
            if related is not None:
                state[key] = related.id
    statement = _insert_message()
    connection = session.connection()
    for message in pending:
        state = message.__dict__
        if message is not inbound and state.get("caused_by") is inbound:
            state["caused_by_id"] = inbound.id
        values = {key: state[key] for key, _, _ in defaults}
        state["id"] = connection.execute(statement, values).inserted_primary_key[0]
    for message in pending:
        session.expunge(message)
        make_transient_to_detached(message)
        session.add(message)


def _from_contact(
    message: Message,
    trip: Trip,
    proxy: str,
    endpoints: dict[str, Endpoint],
    recipient: Recipient,
) -> list[Message]:
    message.kind = Kind.FROM_CONTACT
    message.contact = recipient.contact
    word = commands.keyword(message.body) if not message.num_media else None
    if word in commands.STOP_WORDS:
        return _opt_out(message, trip, proxy, endpoints, recipient)
    if word in commands.START_WORDS:
        return _opt_in(message, trip, proxy, endpoints, recipient)
    if word in commands.HELP_WORDS:
        message.note = "HELP keyword"
        cfg = current_app.config
        reply = (
            f"{cfg['SCHOOL_NAME']}: this number reaches the staff on {trip.title}. Text your "
            f"message here. For anything else call the school office on {cfg['OFFICE_PHONE']}. "
            "Reply STOP to stop these texts."
        )
        return [
            _queue_to_contact(trip, proxy, recipient, reply, Kind.KEYWORD_REPLY, caused_by=message)
        ]
    if len(message.body) > MAX_BODY:
        message.needs_review = True
        message.note = "too long to relay"
        reply = (
            f"Your message was too long to pass on ({len(message.body):,} characters; the "
            f"limit is {MAX_BODY:,}). Please send it again in shorter parts."
        )
        return [
            _queue_to_contact(trip, proxy, recipient, reply, Kind.KEYWORD_REPLY, caused_by=message)
        ]
    if recipient.no_contact:
        # Staff may not reply to this contact; the office decides what to do.
        message.needs_review = True
        message.note = "from a contact marked no contact; not relayed"
        return []
    if not endpoints:
        message.needs_review = True
        message.note = "no staff phone on this trip right now"
        return []
    text = message.body.strip()
    note = commands.media_note(message.media_types)
    content = " ".join(part for part in (text, note) if part)
    forwards = []
    for endpoint in endpoints.values():
        hint = (
            ""
            if _has_used_codes(trip, endpoint.number)
            else f"\nReply: #{recipient.code} your message"
        )
        forwards.append(
            _queue(
                trip,
                Kind.FORWARD,
                from_number=proxy,
                to_number=endpoint.number,
                body=f"{recipient.label}: {content}{hint}",
                contact=recipient.contact,
                staff_id=endpoint.user_id,
                endpoint=endpoint.number,
                caused_by=message,
            )
        )
    return forwards


@cache
def _used_codes_query() -> Select:
    """Whether an endpoint (``endpoint``) has sent a ``#12`` command on a trip (``trip_id``):
    built once, since every parent's text asks it for each endpoint."""
    return select(
        exists().where(
            Message.trip_id == bindparam("trip_id"),
            Message.direction == Direction.IN,
            Message.from_number == bindparam("endpoint"),
            Message.kind == Kind.COMMAND,
            Message.note == "code",
        )
    )


def _has_used_codes(trip: Trip, endpoint: str) -> bool:
    return plain_rows(_used_codes_query(), {"trip_id": trip.id, "endpoint": endpoint}).scalar()


def _notify_endpoints(
    trip: Trip, proxy: str, endpoints: dict[str, Endpoint], text: str, caused_by: Message, **kw
) -> list[Message]:
    return [
        _queue(
            trip,
            Kind.FORWARD,
            from_number=proxy,
            to_number=e.number,
            body=text,
            staff_id=e.user_id,
            endpoint=e.number,
            caused_by=caused_by,
            **kw,
        )
        for e in endpoints.values()
    ]


def _opt_out(message, trip, proxy, endpoints, recipient) -> list[Message]:
    message.note = "STOP keyword"
    exists_ = db.session.scalar(
        select(OptOut).where(
            OptOut.number == recipient.contact.mobile, OptOut.proxy_number == proxy
        )
    )
    if exists_ is None:
        db.session.add(OptOut(number=recipient.contact.mobile, proxy_number=proxy))
    # Twilio confirms the opt-out to the parent itself; the staff are told.
    text = f"{recipient.label} has opted out of texts from this trip number (STOP)."
    return _notify_endpoints(trip, proxy, endpoints, text, message, contact=recipient.contact)


def _opt_in(message, trip, proxy, endpoints, recipient) -> list[Message]:
    message.note = "START keyword"
    db.session.execute(
        delete(OptOut).where(
            OptOut.number == recipient.contact.mobile, OptOut.proxy_number == proxy
        )
    )
    text = f"{recipient.label} has opted back in to texts from this trip number (START)."
    return _notify_endpoints(trip, proxy, endpoints, text, message, contact=recipient.contact)


def _auto_reply(message: Message, trip: Trip | None, proxy: str, text: str) -> list[Message]:
    """One auto-reply per sender and number an hour: two auto-responders must not ping-pong."""
    every = timedelta(minutes=current_app.config["AUTO_REPLY_EVERY_MINUTES"])
    recent = db.session.scalar(
        select(
            exists().where(
                Message.kind == Kind.AUTO_REPLY,
                Message.to_number == message.from_number,
                Message.from_number == proxy,
                Message.created_at > utcnow() - every,
            )
        )
    )
    if recent:
        return []
    return [
        _queue(
            trip,
            Kind.AUTO_REPLY,
            from_number=proxy,
            to_number=message.from_number,
            body=text,
            caused_by=message,
        )
    ]


def _office() -> str:
    cfg = current_app.config
    return (
        f"the school office on {cfg['OFFICE_PHONE']}"
        if cfg["OFFICE_PHONE"]
        else "the school office"
    )


def _no_trip(message: Message) -> list[Message]:
    message.kind = Kind.NO_TRIP
    message.needs_review = True
    school = current_app.config["SCHOOL_NAME"]
    return _auto_reply(
        message,
        None,
        message.to_number,
        f"This {school} trip number is not in use at the moment, so your message has not "
        f"been passed on. Please contact {_office()}.",
    )


def _from_stranger(message: Message, trip: Trip, proxy: str, sender: str, at) -> list[Message]:
    staff = db.session.scalar(select(StaffNumber).where(StaffNumber.number == sender))
    if staff is not None or sender in school_sim_numbers():
        message.kind = Kind.FROM_STAFF_UNAPPROVED
        message.staff_id = staff.user_id if staff else None
        message.flagged = "unapproved_phone"
        message.note = "not relayed: no approval in force (policy 50)"
        return _auto_reply(
            message,
            trip,
            proxy,
            "Not sent: this phone is not approved for this trip, so your text reached no "
            "parent. Use the trip's school phone, or ask the Headteacher for approval "
            "(policy 50).",
        )
    pupil = db.session.scalar(select(Pupil).where(Pupil.own_mobile == sender))
    if pupil is not None:
        message.kind = Kind.FROM_PUPIL
        message.needs_review = True
        message.flagged = "pupil"
        message.note = "from a pupil's own number; not relayed (policy 28, 42)"
        return _auto_reply(
            message,
            trip,
            proxy,
            "This number is for parents and carers. Please talk to a member of staff on the "
            f"trip, or ask your parent or carer to contact {_office()}.",
        )
    message.kind = Kind.FROM_UNKNOWN
    message.needs_review = True
    message.note = "unknown number; not relayed"
    school = current_app.config["SCHOOL_NAME"]
    return _auto_reply(
        message,
        trip,
        proxy,
        f"This is a {school} trip number. We do not recognise your number, so your message "
        f"has not been passed on. Please contact {_office()}.",
    )


HELP_TEXT = (
    "To text a parent: #12 your message. To text every parent: ALL your message. "
    "LIST shows the codes. Your number is never shown to parents."
)


def _from_endpoint(
    message: Message,
    trip: Trip,
    proxy: str,
    endpoints: dict[str, Endpoint],
    sender: str,
) -> list[Message]:
    message.kind = Kind.COMMAND
    endpoint = endpoints[sender]
    message.endpoint = sender
    message.staff_id = endpoint.user_id
    staff = db.session.get(User, endpoint.user_id) if endpoint.user_id else None

    def reply(text: str, kind: Kind = Kind.HELP) -> Message:
        return _queue(
            trip,
            kind,
            from_number=proxy,
            to_number=sender,
            body=text,
            staff_id=endpoint.user_id,
            endpoint=sender,
            caused_by=message,
        )

    if len(message.body) > MAX_BODY:
        message.note = "too long"
        return [reply(f"Not sent: {len(message.body):,} characters; the limit is {MAX_BODY:,}.")]
    command = commands.parse_command(message.body)
    message.note = command.name
    if command.name in ("help", "unknown"):
        prefix = "" if command.name == "help" else "Not sent to anyone. "
        return [reply(prefix + HELP_TEXT)]
    if command.name == "list":
        lines = [
            r.label + ("" if r.can_receive else " (cannot receive)")
            for r in _recipients(trip, proxy)
        ]
        if not lines:
            return [reply("No parents or carers on this trip's roster yet.")]
        return [reply(part) for part in commands.split_for_sms(lines)]
    if staff is None:
        return [reply("Not sent: this phone has no holder on record. Ask the office.")]
    if not command.text:
        what = f"#{command.code}" if command.name == "code" else "ALL"
        return [reply(f"Nothing to send: write {what} then your message.")]
    try:
        if command.name == "code":
            outcome = send_to_contact(
                staff,
                trip,
                command.code,
                command.text,
                via="sms",
                endpoint=sender,
                caused_by=message,
            )
            label = f"#{command.code} {outcome.messages[0].contact.name}"
            receipt = f"Sent to {label}."
        else:
            outcome = broadcast(
                staff, trip, command.text, via="sms", endpoint=sender, caused_by=message
            )
            label = f"all ({outcome.sent})"
            receipt = outcome.receipt() + "."
    except ContentBlocked as err:
        return [reply(f"{err.message[0].upper()}{err.message[1:]}. Nothing reached any parent.")]
    except (InvalidInput, NotFound, Conflict, PolicyError) as err:
        return [reply(f"Not sent: {err.message}.")]
    caused = [*outcome.messages, reply(receipt, Kind.RECEIPT)]
    if current_app.config["RELAY_COPY_TO_ENDPOINTS"]:
        for other in endpoints.values():
            if other.number != sender:
                caused.append(
                    _queue(
                        trip,
                        Kind.COPY,
                        from_number=proxy,
                        to_number=other.number,
                        body=f"{staff.name} to {label}: {command.text}",
                        staff_id=other.user_id,
                        endpoint=other.number,
                        caused_by=message,
                    )
                )
    return caused


# --- Status callbacks -------------------------------------------------------------------------


def record_status(sid: str, status: str, error_code: int | None) -> DeliveryEvent:
    """Keep a status callback and apply it if its message is known (else when it is)."""
    event = DeliveryEvent(twilio_sid=sid, status=status[:16], error_code=error_code)
    db.session.add(event)
    # FOR UPDATE: two callbacks for one message at once (Twilio does not wait for our answer to
    # "sent" before posting "delivered") must not both read the old status, or the later commit
    # could step "delivered" back to "sent". On SQLite the event's INSERT has already taken the
    # database's write lock, which does the same.
    message = db.session.scalar(select(Message).where(Message.twilio_sid == sid).with_for_update())
    if message is not None:
        apply_events(message, [event])
    return event


def apply_events(message: Message, events: Iterable[DeliveryEvent]) -> None:
    """Move a message forward through Twilio's statuses; never back from a final one."""
    for event in events:
        event.message_id = message.id
        event.applied = True
        try:
            new = Status(event.status)
        except ValueError:
            continue  # "read", "canceled" and the like: kept as events, no change of status
        current = Status(message.status)
        if current in FINAL_STATUSES or new not in STATUS_RANK:
            continue
        if STATUS_RANK[new] >= STATUS_RANK.get(current, 0):
            message.status = new
            message.status_at = utcnow()
            if event.error_code:
                message.error_code = event.error_code


def apply_pending_events(message: Message) -> None:
    """Callbacks that arrived before we stored the sid."""
    events = list(
        db.session.scalars(
            select(DeliveryEvent)
            .where(DeliveryEvent.twilio_sid == message.twilio_sid, DeliveryEvent.applied.is_(False))
            .order_by(DeliveryEvent.id)
        )
    )
    if events:
        apply_events(message, events)


# --- The web inbox, broadcasts from the web, message templates --------------------------------
#
# Leaders and the Headteacher text parents from the web through the same send_to_contact and
# broadcast as the SMS commands, so the same content rules and opt-outs apply. What the web adds:
# one-time form keys (a double click sends once), a confirmation step for broadcasts, retrying a
# failed text, read markers, and the office's message templates.

# "{minutes}": a word or two in curly brackets, to be filled in before sending.
PLACEHOLDER = re.compile(r"\{\s*([A-Za-z][A-Za-z0-9 _-]{0,30}?)\s*\}")
_FORM_KEY = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
TEMPLATE_NAME_MAX = 80


def placeholders_in(body: str) -> list[str]:
    """The placeholders of ``body`` in order, without repeats: ``["minutes"]``."""
    return list(dict.fromkeys(match.group(0) for match in PLACEHOLDER.finditer(body or "")))


def _check_filled(text: str) -> None:
    left = placeholders_in(text)
    if left:
        raise InvalidInput(
            f"fill in {' and '.join(left)} before sending (replace it with the real words)",
            field="body",
        )


def _check_window(trip: Trip) -> None:
    """Staff text parents on the web only while the trip's number works, as by SMS."""
    window = relay_window(trip)
    if not window.holds(utcnow()):
        raise Conflict(
            "this trip's number works only from "
            f"{format_local(window.opens_at)} to {format_local(window.closes_at)}"
        )


def _check_form_key(key: str | None) -> str:
    if not key or not _FORM_KEY.match(key):
        raise InvalidInput("this form has expired: reload the page and send again")
    return key


def retry_key(message: Message) -> str:
    """The one-time key of sending ``message`` again: it can be retried once."""
    return f"retry-{message.id}"


def send_from_web(
    actor: User, trip: Trip, code: int, body: str, *, request_key: str
) -> tuple[Message, bool]:
    """Queue a text from the web inbox to parent ``code``, once per compose form.

    Returns the message and True, or, when ``request_key`` was used before (a second click on
    "Send", a resubmitted form), the message that key sent and False: nothing more is sent.
    Raises InvalidInput (empty, too long, a placeholder not filled in, no key), NotFound,
    PolicyError, Conflict, or ContentBlocked (the blocked attempt is stored), as
    ``send_to_contact`` does. Two requests with one key at the same moment: the second fails
    at the commit on the unique key, and the view finds the first's message.
    """
    key = _check_form_key(request_key)
    earlier = db.session.scalar(select(SendKey).where(SendKey.key == key))
    if earlier is not None:
        if earlier.user_id != actor.id or earlier.message.trip_id != trip.id:
            raise Conflict("this form was already used: reload the page and send again")
        return earlier.message, False
    text = _check_body(body)
    _check_filled(text)
    _check_window(trip)
    message = send_to_contact(actor, trip, code, text, via="web").messages[0]
    db.session.add(SendKey(key=key, user_id=actor.id, message_id=message.id))
    db.session.flush()
    return message, True


@dataclass
class BroadcastPreview:
    """What a broadcast would do: who receives it and who does not, and why."""

    body: str
    recipients: list[Recipient]
    opted_out: list[Recipient]
    no_contact: list[Recipient]


def preview_broadcast(actor: User, trip: Trip, body: str) -> BroadcastPreview:
    """Check a text to every parent before the person confirms it; nothing is sent.

    Raises InvalidInput (empty, too long, a placeholder not filled in), Conflict (no trip
    number, no roster) or ContentBlocked: a text that breaks a content rule is stored as a
    blocked attempt (and audited) here, as it would be on sending, since trying is what counts.
    """
    text = _check_body(body)
    _check_filled(text)
    _check_window(trip)
    proxy = _proxy_or_conflict(trip)
    _check_rules(
        trip,
        proxy,
        Kind.BROADCAST,
        text,
        to_number="",
        staff=actor,
        via="web",
        endpoint=None,
        caused_by=None,
    )
    recipients = _recipients(trip, proxy)
    if not recipients:
        raise Conflict("this trip has no parents or carers on its roster yet")
    return BroadcastPreview(
        body=text,
        recipients=[r for r in recipients if r.can_receive],
        opted_out=[r for r in recipients if r.opted_out],
        no_contact=[r for r in recipients if r.no_contact and not r.opted_out],
    )


def broadcast_from_web(actor: User, trip: Trip, body: str, *, request_key: str) -> SendOutcome:
    """Send a confirmed broadcast from the web, once per confirmation form.

    A ``request_key`` used before returns that broadcast and sends nothing more. Raises
    InvalidInput, Conflict (also when the key belongs to another trip's broadcast), or
    ContentBlocked, as ``broadcast`` does.
    """
    key = _check_form_key(request_key)
    earlier = db.session.scalar(select(Broadcast).where(Broadcast.request_key == key))
    if earlier is not None and earlier.trip_id != trip.id:
        raise Conflict("this form was already used: reload the page and send again")
    if earlier is None:
        _check_filled(_check_body(body))
        _check_window(trip)
    return broadcast(actor, trip, body, via="web", request_key=key)


RETRYABLE_KINDS = frozenset({Kind.TO_CONTACT, Kind.BROADCAST})


def retry_message(actor: User, trip: Trip, message: Message) -> Message:
    """Send a failed text to a parent again: a new pending message to the same person, with
    the same words, linked to the failed one (``retry_of``) and audited. It keeps the failed
    text's ``caused_by`` (a ``#12`` reply sent again still answers that command): caused_by
    is only ever the inbound text the relay answered or passed on.

    Each failed text can be sent again once (a one-time key, so two clicks at once make one).
    Raises NotFound when ``message`` is not a staff text to a parent on ``trip`` or the parent
    has left the roster, Conflict when it has not failed or was sent again already or the
    parent has opted out, PolicyError for a parent marked no contact, and ContentBlocked when
    the words now break a content rule.
    """
    if (
        message.trip_id != trip.id
        or message.direction != Direction.OUT
        or message.kind not in RETRYABLE_KINDS
        or message.contact is None
    ):
        raise NotFound("there is no such text to a parent on this trip")
    if message.status not in FAILED_STATUSES:
        raise Conflict("only a text that failed can be sent again")
    key = retry_key(message)
    if db.session.scalar(select(exists().where(SendKey.key == key))):
        raise Conflict("this text has already been sent again")
    _check_window(trip)
    proxy = _proxy_or_conflict(trip)
    found = _recipients(trip, proxy, mobile=message.contact.mobile)
    if not found:
        raise NotFound(f"{message.contact.name} is no longer on this trip's roster")
    recipient = found[0]
    if recipient.no_contact:
        raise PolicyError(
            f"#{recipient.code} {recipient.contact.name} may not receive trip messages"
        )
    if recipient.opted_out:
        raise Conflict(f"#{recipient.code} {recipient.contact.name} has opted out of texts (STOP)")
    common = {"staff": actor, "via": "web", "endpoint": None, "caused_by": message.caused_by}
    _check_rules(
        trip,
        proxy,
        Kind(message.kind),
        message.body,
        retry_of=message,
        contact=recipient.contact,
        to_number=recipient.contact.mobile,
        **common,
    )
    again = _queue_to_contact(
        trip,
        proxy,
        recipient,
        message.body,
        Kind(message.kind),
        broadcast_id=message.broadcast_id,
        retry_of=message,
        **common,
    )
    db.session.flush()
    db.session.add(SendKey(key=key, user_id=actor.id, message_id=again.id))
    db.session.flush()
    record(actor, "message.retried", again, retry_of=message.id, **again.audit_data())
    return again


def mark_thread_read(actor: User, trip: Trip, contact: Contact, up_to: int) -> bool:
    """Remember that ``actor`` has read the thread with ``contact`` on ``trip`` up to message
    ``up_to``. Never moves back. Returns True when the marker moved (and is audited: who saw a
    parent's text, and when, is part of the record of how fast it was answered).
    """
    newest = db.session.scalar(
        select(func.max(Message.id)).where(
            Message.trip_id == trip.id, Message.contact_id == contact.id
        )
    )
    up_to = min(up_to, newest or 0)
    marker = db.session.scalar(
        select(ReadMarker).where(
            ReadMarker.user_id == actor.id,
            ReadMarker.trip_id == trip.id,
            ReadMarker.contact_id == contact.id,
        )
    )
    if marker is None:
        marker = ReadMarker(user_id=actor.id, trip_id=trip.id, contact_id=contact.id)
        marker.last_read_message_id = 0
        db.session.add(marker)
    if up_to <= marker.last_read_message_id:
        return False
    marker.last_read_message_id = up_to
    marker.updated_at = utcnow()
    db.session.flush()
    record(actor, "thread.read", marker, trip_id=trip.id, contact_id=contact.id, up_to=up_to)
    return True


def _template_fields(name: str, body: str, template: MessageTemplate | None) -> tuple[str, str]:
    name = " ".join((name or "").split())
    if not name:
        raise InvalidInput("give the template a name", field="name")
    if len(name) > TEMPLATE_NAME_MAX:
        raise InvalidInput(
            f"the name is {len(name)} characters; the limit is {TEMPLATE_NAME_MAX}", field="name"
        )
    clash = db.session.scalar(
        select(MessageTemplate).where(func.lower(MessageTemplate.name) == func.lower(name))
    )
    if clash is not None and clash is not template:
        raise Conflict(f"there is already a template called {clash.name!r}", field="name")
    text = (body or "").strip()
    if not text:
        raise InvalidInput("write the template's text", field="body")
    if len(text) > MAX_BODY:
        raise InvalidInput(
            f"the text is {len(text):,} characters; the limit is {MAX_BODY:,}", field="body"
        )
    stray = PLACEHOLDER.sub("", text)
    if "{" in stray or "}" in stray:
        raise InvalidInput(
            "a placeholder is a word or two in curly brackets, such as {minutes}; "
            "check the brackets",
            field="body",
        )
    violation = _content_violation(text)
    if violation is not None:
        raise PolicyError(f"the text contains {violation.reason}", field="body")
    return name, text


def create_template(actor: User, *, name: str, body: str) -> MessageTemplate:
    """Add a message template offered to staff writing to parents.

    Raises InvalidInput (no name or text, too long, stray brackets), Conflict (the name is
    taken) or PolicyError (the text breaks a content rule: it could never be sent).
    """
    name, text = _template_fields(name, body, None)
    template = MessageTemplate(name=name, body=text, created_by_id=actor.id)
    db.session.add(template)
    db.session.flush()
    record(actor, "template.created", template, digest=body_digest("", text))
    return template


def update_template(actor: User, template: MessageTemplate, *, name: str, body: str) -> None:
    """Change a template's name and text. Raises as ``create_template`` does."""
    name, text = _template_fields(name, body, template)
    template.name = name
    template.body = text
    template.updated_at = utcnow()
    db.session.flush()
    record(actor, "template.updated", template, digest=body_digest("", text))


def retire_template(actor: User, template: MessageTemplate) -> None:
    """Stop offering a template; it is kept. Raises Conflict when it is retired already."""
    if not template.active:
        raise Conflict(f"{template.name!r} is already retired")
    template.active = False
    template.updated_at = utcnow()
    db.session.flush()
    record(actor, "template.retired", template)

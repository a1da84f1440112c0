"""Read-only questions the web inbox asks: threads, a conversation, a broadcast's progress.

A thread is one parent or carer on one trip. It holds the parent's texts, staff replies (by web
or by SMS command), texts to everyone, automatic replies to their keywords, and staff attempts
that a content rule blocked. A parent on a "no contact" link never appears: the office deals
with their texts (they are in its review queue), and staff may not text them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from flask import current_app
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import selectinload

from tripcomms.auth.models import Role, User
from tripcomms.extensions import db
from tripcomms.localtime import to_local
from tripcomms.relay.models import (
    FAILED_STATUSES,
    FINAL_STATUSES,
    Broadcast,
    Direction,
    Kind,
    Message,
    MessageTemplate,
    OptOut,
    ReadMarker,
    Status,
)
from tripcomms.relay.numbers import relay_window, trip_number
from tripcomms.relay.operations import RETRYABLE_KINDS
from tripcomms.safeguarding.responses import NO_CONTACT_NOTE, target, waiting_since
from tripcomms.trips.access import visible_trips
from tripcomms.trips.models import Contact, ContactLink, Pupil, Trip, TripContact, TripPupil
from tripcomms.types import utcnow

# What staff see instead of Twilio's error codes.
FAILURE_REASONS = {
    21211: "not a valid phone number",
    21408: "texts to that country are not enabled",
    21610: "opted out of texts from this number (STOP)",
    21612: "the network cannot take texts to that number",
    21614: "not a mobile number",
    30001: "too many texts queued at Twilio",
    30002: "the school's Twilio account is suspended",
    30003: "unreachable: the phone is off or out of signal",
    30004: "blocked by the phone or its network",
    30005: "unknown number: it may no longer exist",
    30006: "a landline, or a network that cannot take texts",
    30007: "filtered by the network as spam",
    30008: "the network could not deliver it",
}

# Message statuses as people say them, in four states (and blocked, and received).
STATE_OF_STATUS = {
    Status.PENDING: "queued",
    Status.SENDING: "queued",
    Status.ACCEPTED: "queued",
    Status.QUEUED: "queued",
    Status.SENT: "sent",
    Status.DELIVERED: "delivered",
    Status.UNDELIVERED: "failed",
    Status.FAILED: "failed",
    Status.BLOCKED: "blocked",
    Status.RECEIVED: "received",
}
STATE_TEXT = {
    "queued": "Queued",
    "sent": "Sent",
    "delivered": "Delivered",
    "failed": "Not delivered",
    "blocked": "Not sent: blocked",
    "received": "Received",
}
INBOUND_NOTES = {
    "STOP keyword": "Opted out of texts from this trip number (STOP).",
    "START keyword": "Opted back in to texts from this trip number (START).",
    "HELP keyword": "Asked for help; the automatic help reply was sent.",
    "too long to relay": "Too long to pass on; they were asked to send it in shorter parts.",
    "no staff phone on this trip right now": "No staff phone was on this trip to pass it to.",
}
_GAVE_UP = re.compile(r"gave up after (\d+) attempts")


def state_of(message: Message) -> str:
    return STATE_OF_STATUS.get(Status(message.status), "queued")


def failure_reason(message: Message) -> str:
    """Why a text was not delivered, in words: "unreachable: the phone is off or ..."."""
    code = message.error_code
    if code in FAILURE_REASONS:
        return FAILURE_REASONS[code]
    gave_up = _GAVE_UP.search(message.error_message or "")
    if gave_up:
        return f"Twilio could not be reached; gave up after {gave_up.group(1)} tries"
    if code:
        return f"Twilio error {code}"
    return "not delivered"


def blocked_reason(message: Message) -> str:
    return (message.note or "").removeprefix("blocked: ") or "a content rule"


def short_time(moment: datetime, now: datetime | None = None) -> str:
    """ "14:02" today, "Tue 3 Mar 14:02" on another day (London time)."""
    local, today = to_local(moment), to_local(now or utcnow())
    if local.date() == today.date():
        return local.strftime("%H:%M")
    return f"{local.strftime('%a')} {local.day} {local.strftime('%b %H:%M')}"


def iso(moment: datetime | None) -> str | None:
    return moment.isoformat().replace("+00:00", "Z") if moment else None


# --- Who may use the inbox --------------------------------------------------------------------


def may_use_inbox(user: User, trip: Trip) -> bool:
    """The Headteacher, and the trip's own leader and staff (design: leaders and the head)."""
    return user.has_role(Role.HEAD) or (user.has_role(Role.LEADER) and user.id in trip.staff_ids)


# --- People on the trip -----------------------------------------------------------------------


@dataclass
class Person:
    """A parent or carer as the inbox shows them: code, name, children, never the number."""

    code: int
    contact: Contact
    pupils: list[Pupil] = field(default_factory=list)
    active: bool = True
    no_contact: bool = False
    opted_out: bool = False

    @property
    def name(self) -> str:
        return self.contact.name

    @property
    def pupils_text(self) -> str:
        return ", ".join(p.short_name for p in self.pupils)

    @property
    def label(self) -> str:
        return f"#{self.code} {self.name}" + (f" ({self.pupils_text})" if self.pupils else "")

    @property
    def can_receive(self) -> bool:
        return self.active and not (self.no_contact or self.opted_out)


def people(trip: Trip, *, code: int | None = None) -> dict[int, Person]:
    """Everyone with a code on ``trip`` (those since dropped from the roster too), by contact id;
    or only the one with ``code``."""
    query = (
        select(TripContact.code, TripContact.active, Contact)
        .join(TripContact.contact)
        .where(TripContact.trip_id == trip.id)
        .options(selectinload(Contact.links).selectinload(ContactLink.pupil))
        .order_by(TripContact.code)
    )
    if code is not None:
        query = query.where(TripContact.code == code)
    rows = db.session.execute(query).all()
    if not rows:
        return {}
    on_trip = set(
        db.session.scalars(select(TripPupil.pupil_id).where(TripPupil.trip_id == trip.id))
    )
    proxy = trip_number(trip)
    opted_out: set[str] = set()
    if proxy:
        numbers = [contact.mobile for *_, contact in rows]
        opted_out = set(
            db.session.scalars(
                select(OptOut.number).where(
                    OptOut.proxy_number == proxy, OptOut.number.in_(numbers)
                )
            )
        )
    found = {}
    for code_, active, contact in rows:
        links = [link for link in contact.links if link.pupil_id in on_trip]
        found[contact.id] = Person(
            code=code_,
            contact=contact,
            pupils=[link.pupil for link in links],
            active=active,
            no_contact=any(link.no_contact for link in links),
            opted_out=contact.mobile in opted_out,
        )
    return found


# --- Threads ----------------------------------------------------------------------------------


def _thread_messages(trip: Trip):
    """Messages of the trip that belong in some parent's thread."""
    return and_(
        Message.trip_id == trip.id,
        Message.contact_id.is_not(None),
        or_(
            and_(
                Message.direction == Direction.IN,
                Message.kind == Kind.FROM_CONTACT,
                ~Message.note.startswith(NO_CONTACT_NOTE),
            ),
            and_(
                Message.direction == Direction.OUT,
                Message.kind.in_([Kind.TO_CONTACT, Kind.BROADCAST, Kind.KEYWORD_REPLY]),
            ),
        ),
    )


@dataclass
class Thread:
    person: Person
    last: Message
    unread: int = 0
    waiting_since: datetime | None = None

    @property
    def overdue(self) -> bool:
        """Waiting longer than the school's response target (policy 22h)."""
        if self.waiting_since is None:
            return False
        return utcnow() - self.waiting_since > target()


def threads(trip: Trip, user: User) -> list[Thread]:
    """The trip's conversations, the most recent first, with ``user``'s unread counts.

    A thread exists once a parent has texted or been texted on their own; texts to everyone
    appear inside each thread but neither start one nor bring it to the top, or one broadcast
    would bury every question under forty copies of itself.
    """
    everyone = {pid: p for pid, p in people(trip).items() if not p.no_contact}
    if not everyone:
        return []
    direct = and_(_thread_messages(trip), Message.kind != Kind.BROADCAST)
    last_ids = dict(
        db.session.execute(
            select(Message.contact_id, func.max(Message.id))
            .where(direct)
            .group_by(Message.contact_id)
        ).all()
    )
    last_ids = {cid: mid for cid, mid in last_ids.items() if cid in everyone}
    if not last_ids:
        return []
    last = {
        m.contact_id: m
        for m in db.session.scalars(select(Message).where(Message.id.in_(last_ids.values())))
    }
    # Parents waiting for a reply, as the late-reply flags count them (policy 22h).
    waiting = waiting_since(trip.id)
    markers = read_markers(trip, user)
    unread: dict[int, int] = defaultdict(int)
    for message_id, contact_id in db.session.execute(
        select(Message.id, Message.contact_id).where(
            _thread_messages(trip), Message.direction == Direction.IN
        )
    ):
        if message_id > markers.get(contact_id, 0):
            unread[contact_id] += 1
    result = [Thread(everyone[cid], last[cid], unread[cid], waiting.get(cid)) for cid in last_ids]
    result.sort(key=lambda t: t.last.id, reverse=True)
    return result


def read_markers(trip: Trip, user: User) -> dict[int, int]:
    """How far ``user`` has read each thread of ``trip``: contact id -> message id."""
    return dict(
        db.session.execute(
            select(ReadMarker.contact_id, ReadMarker.last_read_message_id).where(
                ReadMarker.user_id == user.id, ReadMarker.trip_id == trip.id
            )
        ).all()
    )


def person_by_code(trip: Trip, code: int) -> Person | None:
    """The parent with ``code`` on ``trip``, unless they are on a "no contact" link."""
    found = next(iter(people(trip, code=code).values()), None)
    return None if found is None or found.no_contact else found


@dataclass
class Entry:
    """One message as a conversation shows it."""

    message: Message
    side: str  # "parent" or "staff"
    who: str
    how: str
    state: str
    status_text: str
    reason: str = ""
    note: str = ""
    retry: bool = False
    retried: bool = False


def conversation(trip: Trip, person: Person, limit: int = 300) -> list[Entry]:
    """The thread with ``person``, oldest first (the latest ``limit`` messages)."""
    messages = list(
        db.session.scalars(
            select(Message)
            .where(_thread_messages(trip), Message.contact_id == person.contact.id)
            .options(selectinload(Message.staff))
            .order_by(Message.id.desc())
            .limit(limit)
        )
    )
    messages.reverse()
    ids = [m.id for m in messages]
    forwards: dict[int, list[str]] = defaultdict(list)
    retried: set[int] = set()
    if ids:
        for caused_by, status in db.session.execute(
            select(Message.caused_by_id, Message.status).where(
                Message.caused_by_id.in_(ids), Message.kind == Kind.FORWARD
            )
        ):
            forwards[caused_by].append(status)
        retried.update(
            db.session.scalars(select(Message.retry_of_id).where(Message.retry_of_id.in_(ids)))
        )
    return [_entry(m, person, forwards.get(m.id, []), m.id in retried) for m in messages]


def _entry(message: Message, person: Person, forwards: list[str], retried: bool) -> Entry:
    state = state_of(message)
    if message.direction == Direction.IN:
        notes = [INBOUND_NOTES.get(message.note, "")]
        if message.num_media:
            noun = "picture" if message.num_media == 1 else "pictures"
            notes.append(f"{message.num_media} {noun} not fetched or passed on (policy 31, 71).")
        if forwards:
            reached = sum(1 for s in forwards if s == Status.DELIVERED)
            phones = "staff phone" if len(forwards) == 1 else "staff phones"
            notes.append(f"Passed to {len(forwards)} {phones}; delivered to {reached}.")
        return Entry(
            message,
            "parent",
            person.name,
            "",
            "received",
            STATE_TEXT["received"],
            note=" ".join(n for n in notes if n),
        )
    staff = message.staff.name if message.staff else ""
    by = "on the web" if message.via == "web" else "by text"
    if message.kind == Kind.BROADCAST:
        who, how = staff or "Staff", f"to everyone on the trip, {by}"
    elif message.kind == Kind.KEYWORD_REPLY:
        who, how = "Automatic reply", ""
    else:
        who, how = staff or "Staff", by
    reason = ""
    if state == "failed":
        reason = failure_reason(message)
    elif state == "blocked":
        reason = blocked_reason(message)
    can_retry = (
        state == "failed"
        and not retried
        and message.kind in RETRYABLE_KINDS
        and Status(message.status) in FAILED_STATUSES
    )
    return Entry(
        message,
        "staff",
        who,
        how,
        state,
        STATE_TEXT[state],
        reason=reason,
        note="Sent again." if retried else "",
        retry=can_retry,
        retried=retried,
    )


# --- Broadcasts -------------------------------------------------------------------------------


@dataclass
class ProgressRow:
    person: Person | None
    message: Message
    attempts: int  # how many texts this broadcast sent to this person (a retry makes two)
    state: str
    reason: str
    retry: bool


@dataclass
class Progress:
    broadcast: Broadcast
    rows: list[ProgressRow]
    counts: dict[str, int]

    @property
    def total(self) -> int:
        return len(self.rows)

    @property
    def done(self) -> int:
        """Recipients whose text has reached an end: delivered, or failed."""
        return self.counts["delivered"] + self.counts["failed"]

    @property
    def finished(self) -> bool:
        return self.done == self.total


def broadcast_progress(trip: Trip, broadcast: Broadcast) -> Progress:
    """Where each recipient's copy of ``broadcast`` is: queued, sent, delivered or failed.

    A recipient whose text was sent again is shown by the latest attempt. Rows are by code,
    those not delivered first.
    """
    everyone = people(trip)
    latest: dict[int, Message] = {}
    attempts: dict[int, int] = defaultdict(int)
    for message in db.session.scalars(
        select(Message).where(Message.broadcast_id == broadcast.id).order_by(Message.id)
    ):
        latest[message.contact_id] = message
        attempts[message.contact_id] += 1
    counts = {"queued": 0, "sent": 0, "delivered": 0, "failed": 0}
    rows = []
    for contact_id, message in latest.items():
        state = state_of(message)
        counts[state] = counts.get(state, 0) + 1
        rows.append(
            ProgressRow(
                everyone.get(contact_id),
                message,
                attempts[contact_id],
                state,
                failure_reason(message) if state == "failed" else "",
                retry=state == "failed" and Status(message.status) in FAILED_STATUSES,
            )
        )
    # Those not delivered first: on a phone, forty delivered rows would hide them.
    rows.sort(key=lambda r: (r.state != "failed", r.person.code if r.person else 0))
    return Progress(broadcast, rows, counts)


def recent_broadcasts(trip: Trip, limit: int = 10) -> list[Broadcast]:
    return list(
        db.session.scalars(
            select(Broadcast)
            .where(Broadcast.trip_id == trip.id)
            .options(selectinload(Broadcast.author))
            .order_by(Broadcast.id.desc())
            .limit(limit)
        )
    )


def final(message: Message) -> bool:
    return Status(message.status) in FINAL_STATUSES


# --- Templates and the home page ---------------------------------------------------------------


def active_templates() -> list[MessageTemplate]:
    return list(
        db.session.scalars(
            select(MessageTemplate)
            .where(MessageTemplate.active.is_(True))
            .order_by(MessageTemplate.name)
        )
    )


def texting_trips(user: User) -> list[Trip]:
    """Trips whose number works now and whose inbox ``user`` may open."""
    now = utcnow()
    cfg = current_app.config
    query = (
        visible_trips(user)
        .where(
            Trip.cancelled_at.is_(None),
            Trip.starts_at <= now + cfg["RELAY_OPEN_BEFORE"],
            Trip.ends_at > now - cfg["RELAY_GRACE_AFTER"],
        )
        .order_by(Trip.starts_at)
        .limit(20)
    )
    return [
        trip
        for trip in db.session.scalars(query)
        if may_use_inbox(user, trip) and relay_window(trip).holds(now)
    ]

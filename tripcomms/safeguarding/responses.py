"""Response times: parents' texts that wait too long for a staff reply (policy 22h).

A parent's text waits from the moment it arrives until a member of staff replies to that
parent on that trip (a ``#12 ...`` from a trip phone or a reply from the web). Broadcasts are
not replies, nor are replies a content rule blocked, nor replies that failed: neither reached
the parent, who waits on from their text. A failed reply sent again from the inbox is a reply
from when it was sent again, like any other. Texts that staff are not to answer
(keywords, a contact marked no contact, too long to pass on) never wait. This is the one
definition of a text still waiting for a reply: the web inbox's "waiting" badges use it for
every trip, and late-reply flags for the trips whose relay window is open now ("during the
trip").
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import aliased, selectinload

from tripcomms.extensions import db
from tripcomms.relay.models import FAILED_STATUSES, Direction, Kind, Message, Status
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow

# Notes the relay writes on a parent's text that staff are not to answer: a keyword, and a
# text too long to pass on (the parent is asked to send it again in shorter parts).
KEYWORD_NOTES = ("STOP keyword", "START keyword", "HELP keyword")
TOO_LONG_NOTE = "too long to relay"
# The start of the note on a text from a parent on a "no contact" link: the office's, never
# shown to staff.
NO_CONTACT_NOTE = "from a contact marked no contact"
# A staff text to a parent in one of these never reached them: it answers nothing. One still
# on its way counts, until Twilio says it failed.
NOT_A_REPLY = (Status.BLOCKED, *FAILED_STATUSES)


def target() -> timedelta:
    return timedelta(minutes=current_app.config["RESPONSE_TARGET_MINUTES"])


def awaits_reply_conditions() -> list:
    """A parent's text that staff should answer."""
    return [
        Message.direction == Direction.IN,
        Message.kind == Kind.FROM_CONTACT,
        Message.note.not_in((*KEYWORD_NOTES, TOO_LONG_NOTE)),
        ~Message.note.startswith(NO_CONTACT_NOTE),
        Message.contact_id.is_not(None),
        Message.trip_id.is_not(None),
    ]


def awaits_reply(message: Message) -> bool:
    """``awaits_reply_conditions`` for one message in hand, whose parent and trip are known."""
    return (
        message.direction == Direction.IN
        and message.kind == Kind.FROM_CONTACT
        and message.note not in (*KEYWORD_NOTES, TOO_LONG_NOTE)
        and not message.note.startswith(NO_CONTACT_NOTE)
    )


def is_reply_to(message: Message) -> bool:
    """Whether an outbound ``message`` answers its parent's earlier texts."""
    return (
        message.direction == Direction.OUT
        and message.kind == Kind.TO_CONTACT
        and message.status not in NOT_A_REPLY
    )


def still_waiting_conditions() -> list:
    """A parent's text still waiting for a reply: one staff should answer, and no staff reply
    to that parent on that trip since (at the same moment or later) that has not failed."""
    reply = aliased(Message)
    replied = exists().where(
        reply.trip_id == Message.trip_id,
        reply.contact_id == Message.contact_id,
        reply.direction == Direction.OUT,
        reply.kind == Kind.TO_CONTACT,
        reply.status.not_in(NOT_A_REPLY),
        reply.created_at >= Message.created_at,
    )
    return [*awaits_reply_conditions(), ~replied]


def waiting_since(trip_id: int) -> dict[int, datetime]:
    """When each parent of a trip started waiting, by contact id: the time of their first
    text still waiting for a reply (see ``still_waiting_conditions``). Any trip, in its relay
    window or not."""
    return dict(
        db.session.execute(
            select(Message.contact_id, func.min(Message.created_at))
            .where(Message.trip_id == trip_id, *still_waiting_conditions())
            .group_by(Message.contact_id)
        ).all()
    )


def unanswered_query(
    *,
    trip_ids: Iterable[int] | Select | None = None,
    older_than: timedelta | None = None,
    now: datetime | None = None,
) -> Select[tuple[Message]]:
    """Parents' texts still waiting for a reply (``still_waiting_conditions``), to trips in
    their relay window now, and at least ``older_than`` old (the response target by default);
    oldest first.

    ``trip_ids`` limits them (a list or a subquery of ids): a leader's inbox passes theirs.
    """
    now = now or utcnow()
    older_than = target() if older_than is None else older_than
    cfg = current_app.config
    in_window = select(Trip.id).where(
        Trip.starts_at <= now + cfg["RELAY_OPEN_BEFORE"],
        Trip.ends_at >= now - cfg["RELAY_GRACE_AFTER"],
    )
    query = (
        select(Message)
        .where(
            *still_waiting_conditions(),
            Message.created_at <= now - older_than,
            Message.trip_id.in_(in_window),
        )
        .options(selectinload(Message.contact), selectinload(Message.trip))
        .order_by(Message.created_at, Message.id)
    )
    if trip_ids is not None:
        query = query.where(Message.trip_id.in_(trip_ids))
    return query


@dataclass(frozen=True)
class Waiting:
    """The first unanswered text of one parent on one trip, and how long it has waited."""

    message: Message
    waited: timedelta
    count: int  # texts from this parent since the last reply

    @property
    def minutes(self) -> int:
        return int(self.waited.total_seconds() // 60)


def waiting_texts(
    *,
    trip_ids: Iterable[int] | Select | None = None,
    older_than: timedelta | None = None,
    now: datetime | None = None,
) -> list[Waiting]:
    """One ``Waiting`` per parent and trip (their earliest unanswered text), longest first."""
    now = now or utcnow()
    threads: dict[tuple[int, int], list[Message]] = {}
    query = unanswered_query(trip_ids=trip_ids, older_than=timedelta(0), now=now)
    for message in db.session.scalars(query):
        threads.setdefault((message.trip_id, message.contact_id), []).append(message)
    limit = target() if older_than is None else older_than
    found = [
        Waiting(texts[0], now - texts[0].created_at, len(texts))
        for texts in threads.values()
        if now - texts[0].created_at >= limit
    ]
    return sorted(found, key=lambda w: w.waited, reverse=True)


@dataclass(frozen=True)
class ReplyTimes:
    """How quickly a trip's parents got a first staff reply."""

    waits: list[timedelta]  # each answered wait, from the parent's first text to the reply
    unanswered: int  # waits that never got a reply

    @property
    def median(self) -> timedelta | None:
        if not self.waits:
            return None
        return timedelta(seconds=statistics.median(w.total_seconds() for w in self.waits))


def reply_times(messages: Iterable[Message]) -> ReplyTimes:
    """Replies measured over a trip's messages in time order: a wait opens with a parent's
    text when none is open for that parent, and closes with the next reply to them."""
    open_since: dict[int, datetime] = {}
    waits: list[timedelta] = []
    for message in messages:
        if message.contact_id is None:
            continue
        if awaits_reply(message):
            open_since.setdefault(message.contact_id, message.created_at)
        elif is_reply_to(message) and message.contact_id in open_since:
            waits.append(message.created_at - open_since.pop(message.contact_id))
    return ReplyTimes(waits, len(open_since))


def describe_wait(waited: timedelta | None) -> str:
    """ "4 min", "1 h 12 min", or "none" ."""
    if waited is None:
        return "none"
    minutes = int(waited.total_seconds() // 60)
    if minutes < 1:
        return f"{int(waited.total_seconds())} s"
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"

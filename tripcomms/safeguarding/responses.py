"""Response times: parents' texts that wait too long for a staff reply (policy 22h).

A parent's text waits from the moment it arrives until a member of staff replies to that
parent on that trip (a ``#12 ...`` from a trip phone or a reply from the web). Broadcasts are
not replies. Texts that staff could not answer (keywords, a contact marked no contact, too
long) are not counted. Only texts to trips whose relay window is open now are flagged: that is
"during the trip".
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import Select, exists, select
from sqlalchemy.orm import aliased, selectinload

from tripcomms.extensions import db
from tripcomms.relay.models import Direction, Kind, Message, Status
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow

# Notes the relay writes on a parent's text that is a keyword, not something to answer.
KEYWORD_NOTES = ("STOP keyword", "START keyword", "HELP keyword")


def target() -> timedelta:
    return timedelta(minutes=current_app.config["RESPONSE_TARGET_MINUTES"])


def awaits_reply_conditions() -> list:
    """A parent's text that staff should answer."""
    return [
        Message.direction == Direction.IN,
        Message.kind == Kind.FROM_CONTACT,
        Message.needs_review.is_(False),
        Message.note.not_in(KEYWORD_NOTES),
        Message.contact_id.is_not(None),
        Message.trip_id.is_not(None),
    ]


def is_reply_to(message: Message) -> bool:
    """Whether an outbound ``message`` answers its parent's earlier texts."""
    return (
        message.direction == Direction.OUT
        and message.kind == Kind.TO_CONTACT
        and message.status != Status.BLOCKED
    )


def unanswered_query(
    *,
    trip_ids: Iterable[int] | Select | None = None,
    older_than: timedelta | None = None,
    now: datetime | None = None,
) -> Select[tuple[Message]]:
    """Parents' texts, to trips in their relay window now, with no staff reply since and
    at least ``older_than`` old (the response target by default); oldest first.

    ``trip_ids`` limits them (a list or a subquery of ids): a leader's inbox passes theirs.
    """
    now = now or utcnow()
    older_than = target() if older_than is None else older_than
    cfg = current_app.config
    reply = aliased(Message)
    replied = exists().where(
        reply.trip_id == Message.trip_id,
        reply.contact_id == Message.contact_id,
        reply.direction == Direction.OUT,
        reply.kind == Kind.TO_CONTACT,
        reply.status != Status.BLOCKED,
        reply.created_at >= Message.created_at,
    )
    in_window = select(Trip.id).where(
        Trip.starts_at <= now + cfg["RELAY_OPEN_BEFORE"],
        Trip.ends_at >= now - cfg["RELAY_GRACE_AFTER"],
    )
    query = (
        select(Message)
        .where(
            *awaits_reply_conditions(),
            Message.created_at <= now - older_than,
            Message.trip_id.in_(in_window),
            ~replied,
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
        if (
            message.direction == Direction.IN
            and message.kind == Kind.FROM_CONTACT
            and not message.needs_review
            and message.note not in KEYWORD_NOTES
        ):
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

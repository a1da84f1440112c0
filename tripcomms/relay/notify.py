"""Texts between the school and its own staff from NOTIFY_FROM, the school's notification number.

Other packages text staff from it (the Headteacher is asked to decide a personal-phone request)
and handle the answers that come back to it: each registers a reply handler. Like every text,
a notification is a pending ``Message`` row that the outbox sends after the commit.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from flask import current_app

from tripcomms.errors import InvalidInput
from tripcomms.extensions import db
from tripcomms.mobile import normalise_number
from tripcomms.relay.commands import MAX_BODY
from tripcomms.relay.models import Direction, Kind, Message, Status
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow

# A handler returns the messages it caused, or None when the text is not for it.
ReplyHandler = Callable[[Message, datetime], list[Message] | None]
REPLY_HANDLERS: list[ReplyHandler] = []


def reply_handler(fn: ReplyHandler) -> ReplyHandler:
    """Register a handler for texts that arrive at NOTIFY_FROM."""
    REPLY_HANDLERS.append(fn)
    return fn


def notify_number() -> str | None:
    """NOTIFY_FROM in E.164, or None when it is unset or does not parse."""
    text = current_app.config.get("NOTIFY_FROM")
    if not text:
        return None
    try:
        return normalise_number(text, mobile=False)
    except InvalidInput:
        return None


def handle_reply(message: Message, at: datetime) -> list[Message]:
    """An inbound text to NOTIFY_FROM: the first handler that takes it decides what it causes;
    one nobody takes waits in the office's review queue."""
    message.kind = Kind.TO_NOTIFY
    for handler in REPLY_HANDLERS:
        caused = handler(message, at)
        if caused is not None:
            return caused
    message.needs_review = True
    message.note = "to the notification number; not an answer to anything"
    return []


def queue_notification(
    to_number: str,
    body: str,
    *,
    trip: Trip | None = None,
    staff_id: int | None = None,
    caused_by: Message | None = None,
) -> Message | None:
    """A pending text from NOTIFY_FROM to a member of staff, or None when NOTIFY_FROM is not
    set (the web pages still show what the text would have said)."""
    sender = notify_number()
    if sender is None:
        return None
    message = Message(
        trip=trip,
        direction=Direction.OUT,
        kind=Kind.NOTIFY,
        from_number=sender,
        to_number=to_number,
        body=body[:MAX_BODY],
        status=Status.PENDING,
        next_attempt_at=utcnow(),
        staff_id=staff_id,
        caused_by=caused_by,
    )
    db.session.add(message)
    return message

"""Urgent decisions by SMS: the Headteacher answers "APPROVE 17" or "DENY 17 <reason>" to the
text that NOTIFY_FROM sent them.

Only a number registered to an active Headteacher decides. The same words from any other
number change nothing: the text waits in the office's review queue, flagged, and the attempt is
audited. No reply goes to such a number, so that nobody learns anything by guessing.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import exists, select

from tripcomms.approvals import operations as ops
from tripcomms.approvals.models import PersonalPhoneApproval, Via
from tripcomms.audit.operations import TWILIO, record
from tripcomms.auth.models import Role, User
from tripcomms.errors import DomainError
from tripcomms.extensions import db
from tripcomms.phones.queries import describe_period
from tripcomms.relay.models import Kind, Message
from tripcomms.relay.notify import queue_notification, reply_handler

DECISION = re.compile(r"^\s*(approve|deny)\b[\s#:]*(\d{1,9})\b[\s:,.\-]*(.*)$", re.I | re.S)
HELP = "To decide a personal-phone request, reply APPROVE 17 or DENY 17 and the reason."
# At most one help text an hour to a number: an auto-responder must not ping-pong with us.
HELP_EVERY = timedelta(hours=1)


def _head_for(number: str) -> User | None:
    user = ops.staff_user_for_number(number)
    return user if user is not None and user.has_role(Role.HEAD) else None


def _reply(head: User, message: Message, body: str, **fields) -> list[Message]:
    reply = queue_notification(
        message.from_number, body, trip=message.trip, staff_id=head.id, caused_by=message
    )
    if reply is None:
        return []
    for name, value in fields.items():
        setattr(reply, name, value)
    return [reply]


def _help(head: User, message: Message, at: datetime) -> list[Message]:
    recent = db.session.scalar(
        select(
            exists().where(
                Message.kind == Kind.NOTIFY,
                Message.to_number == message.from_number,
                Message.note == "help",
                Message.created_at > at - HELP_EVERY,
            )
        )
    )
    return [] if recent else _reply(head, message, HELP, note="help")


@reply_handler
def decide_by_sms(message: Message, at: datetime) -> list[Message] | None:
    """Handle a text to NOTIFY_FROM. Returns the texts it caused, or None when the text is
    neither a decision nor from a Headteacher (then it waits for the office)."""
    match = DECISION.match(message.body or "")
    head = _head_for(message.from_number)
    if match is None:
        if head is None:
            return None
        message.staff_id = head.id
        message.note = "from the Headteacher; not a decision"
        return _help(head, message, at)
    word, request_id, text = match.group(1).upper(), int(match.group(2)), match.group(3)
    approval = db.session.get(PersonalPhoneApproval, request_id)
    if head is None:
        message.needs_review = True
        message.flagged = "decision_not_from_head"
        message.note = f"{word} {request_id} from a number not registered to a Headteacher; ignored"
        db.session.flush()
        record(
            TWILIO,
            "approval.sms_refused",
            approval,
            request_id=request_id,
            word=word,
            message_id=message.id,
            why="not a Headteacher's registered number",
            staff_id=_staff_id(message.from_number),
        )
        return []
    message.staff_id = head.id
    if approval is None:
        message.note = f"{word} {request_id}: no such request"
        return _reply(head, message, f"Not done: there is no request {request_id}.")
    message.trip = approval.trip
    try:
        if word == "APPROVE":
            ops.approve(head, approval, text, via=Via.SMS, message=message, at=at)
        else:
            ops.deny(head, approval, text, via=Via.SMS, message=message, at=at)
    except DomainError as err:
        message.note = f"{word} {request_id} refused: {err.message}"[:300]
        db.session.flush()
        record(
            head,
            "approval.sms_refused",
            approval,
            request_id=request_id,
            word=word,
            message_id=message.id,
            why=type(err).__name__,
        )
        return _reply(head, message, f"Not done: {err.message}.")
    message.note = f"{word} {request_id}"
    who = f"{approval.user.name}'s own phone for {approval.trip.title}"
    if word == "APPROVE":
        period = describe_period(approval.starts_at, approval.ends_at)
        confirmation = f"Approved request {request_id}: {who}, {period}."
    else:
        confirmation = f"Denied request {request_id}: {who}. They have been told."
    return _reply(head, message, confirmation)


def _staff_id(number: str) -> int | None:
    """Whose registered number sent it, if anyone's (a member of staff who is not the head)."""
    user = ops.staff_user_for_number(number)
    return user.id if user is not None else None

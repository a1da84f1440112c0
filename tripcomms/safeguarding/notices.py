"""Texts from tripcomms to staff (a new concern, a parent left waiting), from NOTIFY_FROM.

Like every SMS they are ``Message`` rows first (design rule 2), written by the relay's
``queue_notification``: pending, sent by the outbox after the commit. They name no child and
quote no message: the reader signs in to see more.
"""

from __future__ import annotations

import contextlib

from flask import current_app
from sqlalchemy import select

from tripcomms.auth.models import Role, User, UserRole
from tripcomms.errors import InvalidInput
from tripcomms.extensions import db
from tripcomms.mobile import normalise_number
from tripcomms.relay.models import Message
from tripcomms.relay.notify import queue_notification
from tripcomms.trips.models import Trip


def office_phone() -> str | None:
    with contextlib.suppress(InvalidInput):
        return normalise_number(current_app.config["OFFICE_PHONE"], mobile=False)
    return None


def queue_notice(
    to_number: str,
    body: str,
    *,
    trip: Trip | None = None,
    staff: User | None = None,
    note: str = "",
) -> Message | None:
    """A pending notice to one staff number, noting why; None when NOTIFY_FROM is not set.

    A notice is caused by no message (``caused_by`` is for the relay's replies and forwards):
    the caller links it to its concern or escalation."""
    message = queue_notification(
        to_number,
        body,
        trip=trip,
        staff_id=staff.id if staff else None,
    )
    if message is not None:
        message.note = note[:300]
    return message


def handler_numbers() -> list[tuple[User, str]]:
    """The safeguarding lead's and the Headteacher's first registered numbers (active staff)."""
    users = db.session.scalars(
        select(User)
        .join(UserRole, UserRole.user_id == User.id)
        .where(User.active.is_(True), UserRole.role.in_([Role.DSL, Role.HEAD]))
        .distinct()
        .order_by(User.id)
    )
    return [(user, user.personal_numbers[0].number) for user in users if user.personal_numbers]

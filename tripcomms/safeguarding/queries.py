"""Read-only questions for safeguarding: holds, concerns visible to whom, subject access."""

from __future__ import annotations

from sqlalchemy import Select, and_, exists, or_, select, union
from sqlalchemy.orm import aliased, selectinload

from tripcomms.auth.models import Role, User
from tripcomms.extensions import db
from tripcomms.relay.models import TO_CONTACT_KINDS, Direction, Kind, Message
from tripcomms.safeguarding.models import (
    Concern,
    ConcernNotice,
    ConcernStatus,
    ResponseEscalation,
)
from tripcomms.trips.models import Contact

# Who handles concerns: the designated safeguarding lead and the Headteacher (policy 19, 37).
HANDLERS = (Role.DSL, Role.HEAD)


def is_handler(user: User) -> bool:
    return user.has_role(*HANDLERS)


def held_ids():
    """The ids of messages linked to a concern, which retention never redacts (policy 61,
    70), as one query holding no NULL (so that NOT IN over it is a plain yes or no).

    Linked are: the message a concern is about, the messages it caused (its forwards, which
    carry its text, and replies) and the one that caused it; the texts that sent it again
    from the inbox and the failed texts it sent again, the same words however many times; for
    a concern about a parent's thread, every message of that parent on that trip; and the
    texts that told the safeguarding lead and the Headteacher about a concern.
    """
    about = select(Concern.message_id).where(Concern.message_id.is_not(None))
    other = aliased(Message)
    resent = (
        select(other.id, other.retry_of_id)
        .where(other.id.in_(about))
        .cte("resent", recursive=True, nesting=True)
    )
    step = aliased(Message)
    resent = resent.union(
        select(step.id, step.retry_of_id).join(
            resent, or_(step.retry_of_id == resent.c.id, step.id == resent.c.retry_of_id)
        )
    )
    return union(
        about,
        select(other.id).where(other.caused_by_id.in_(about)),
        select(resent.c.id),
        select(other.caused_by_id).where(other.id.in_(about), other.caused_by_id.is_not(None)),
        select(other.id).join(
            Concern,
            and_(
                Concern.message_id.is_(None),
                Concern.contact_id == other.contact_id,
                Concern.trip_id == other.trip_id,
            ),
        ),
        select(ConcernNotice.message_id),
    )


def held_condition():
    """Messages linked to a concern (see ``held_ids``)."""
    return Message.id.in_(held_ids())


def is_held(message: Message) -> bool:
    return bool(
        db.session.scalar(select(exists().where(Message.id == message.id, held_condition())))
    )


def concerns_query(status: str = "active") -> Select[tuple[Concern]]:
    """Concerns for the handlers' queue: "active" (open and investigating), "closed" or
    "all"; open ones first, then newest first."""
    query = select(Concern).options(
        selectinload(Concern.trip), selectinload(Concern.raised_by), selectinload(Concern.message)
    )
    if status == "active":
        query = query.where(Concern.status != ConcernStatus.CLOSED)
    elif status == "closed":
        query = query.where(Concern.status == ConcernStatus.CLOSED)
    return query


def concerns_about(message: Message) -> list[Concern]:
    """Concerns about this message, or about its parent's thread on its trip."""
    conditions = [Concern.message_id == message.id]
    if message.contact_id is not None and message.trip_id is not None:
        conditions.append(
            and_(
                Concern.message_id.is_(None),
                Concern.contact_id == message.contact_id,
                Concern.trip_id == message.trip_id,
            )
        )
    return list(
        db.session.scalars(select(Concern).where(or_(*conditions)).order_by(Concern.created_at))
    )


def notice_of(message: Message) -> Concern | ResponseEscalation | None:
    """What a notice from NOTIFY_FROM was about: a concern, or a parent's text escalated for a
    late reply; None for any other message."""
    if message.kind != Kind.NOTIFY:
        return None
    concern = db.session.scalar(
        select(Concern).join(ConcernNotice).where(ConcernNotice.message_id == message.id)
    )
    if concern is not None:
        return concern
    return db.session.scalar(
        select(ResponseEscalation).where(ResponseEscalation.notice_id == message.id)
    )


def trip_concerns(trip_id: int) -> list[Concern]:
    return list(
        db.session.scalars(
            select(Concern)
            .where(Concern.trip_id == trip_id)
            .options(selectinload(Concern.raised_by))
            .order_by(Concern.created_at)
        )
    )


def subject_access_conditions(contact: Contact) -> list:
    """Every message to or from one parent or carer: by their contact record, and by their
    number for texts that came before they were on a roster or reached no trip."""
    inbound = and_(
        Message.direction == Direction.IN,
        or_(
            and_(Message.contact_id == contact.id, Message.kind == Kind.FROM_CONTACT),
            Message.from_number == contact.mobile,
        ),
    )
    outbound = and_(
        Message.direction == Direction.OUT,
        or_(
            and_(Message.contact_id == contact.id, Message.kind.in_(TO_CONTACT_KINDS)),
            Message.to_number == contact.mobile,
        ),
    )
    return [or_(inbound, outbound)]

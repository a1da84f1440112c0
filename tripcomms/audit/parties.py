"""Who a message was from and to, in words: for the log pages and the CSV export.

One side of every message is the trip number (or, for notices, the school's notify number);
the other is a parent or carer, a member of staff, a pupil or an unknown number, which the
message's kind tells apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from tripcomms.mobile import mask_number
from tripcomms.relay.models import Direction, Kind

PARENT = "parent or carer"
STAFF = "staff"
PUPIL = "pupil"
UNKNOWN = "unknown"
TRIP_NUMBER = "trip number"
SCHOOL = "school"

_OUTER_ROLE = {
    Kind.FROM_CONTACT: PARENT,
    Kind.TO_CONTACT: PARENT,
    Kind.BROADCAST: PARENT,
    Kind.KEYWORD_REPLY: PARENT,
    Kind.COMMAND: STAFF,
    Kind.FROM_STAFF_UNAPPROVED: STAFF,
    Kind.FORWARD: STAFF,
    Kind.COPY: STAFF,
    Kind.RECEIPT: STAFF,
    Kind.HELP: STAFF,
    Kind.NOTIFY: STAFF,
    Kind.TO_NOTIFY: STAFF,
    Kind.FROM_PUPIL: PUPIL,
    Kind.FROM_UNKNOWN: UNKNOWN,
    Kind.NO_TRIP: UNKNOWN,
}


@dataclass(frozen=True)
class Party:
    role: str
    name: str
    number: str

    def shown(self, full_numbers: bool) -> str:
        """ "parent or carer Mary Jones (•••901)" for a page."""
        number = self.number if full_numbers else mask_number(self.number)
        who = " ".join(part for part in (self.role, self.name) if part)
        return f"{who} ({number})" if number else who


def outer_role(kind: str, *, has_contact: bool, has_staff: bool) -> str:
    """The role of the party who is not the trip number."""
    try:
        role = _OUTER_ROLE.get(Kind(kind))
    except ValueError:
        role = None
    if role is not None:
        return role
    # Auto-replies go back to whoever texted: a parent, a member of staff or a stranger.
    if has_contact:
        return PARENT
    if has_staff:
        return STAFF
    return UNKNOWN


def parties(
    *,
    direction: str,
    kind: str,
    from_number: str,
    to_number: str,
    contact_name: str | None,
    staff_name: str | None,
    trip_title: str | None,
) -> tuple[Party, Party]:
    """(from, to) of one message."""
    role = outer_role(kind, has_contact=bool(contact_name), has_staff=bool(staff_name))
    name = {PARENT: contact_name, STAFF: staff_name}.get(role) or ""
    if kind in (Kind.NOTIFY, Kind.TO_NOTIFY):
        ours_role, ours_name = SCHOOL, "tripcomms notices"
    else:
        ours_role, ours_name = TRIP_NUMBER, trip_title or ""
    if direction == Direction.IN:
        return Party(role, name, from_number), Party(ours_role, ours_name, to_number)
    return Party(ours_role, ours_name, from_number), Party(role, name, to_number)

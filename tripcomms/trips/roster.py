"""Reading and checking a roster file. Nothing here touches the database; the import itself is
``operations.import_roster``.

Header: pupil_first_name,pupil_last_name,year_group,contact_name,relationship,mobile with
optional image_restricted, no_contact and pupil_mobile columns; one row per contact.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tripcomms.csvfiles import RowError, parse_flag, read_csv
from tripcomms.errors import InvalidInput
from tripcomms.mobile import normalise_number

REQUIRED = [
    "pupil_first_name",
    "pupil_last_name",
    "year_group",
    "contact_name",
    "relationship",
    "mobile",
]
OPTIONAL = ["image_restricted", "no_contact", "pupil_mobile"]

PupilKey = tuple[str, str, str]


def pupil_key(first: str, last: str, year: str) -> PupilKey:
    """Pupils are matched by name and year group, ignoring case and spacing."""
    return (" ".join(first.lower().split()), " ".join(last.lower().split()), year.lower().strip())


@dataclass
class PupilRow:
    key: PupilKey
    first_name: str
    last_name: str
    year_group: str
    image_restricted: bool
    own_mobile: str | None
    row: int


@dataclass
class ContactRow:
    pupil: PupilKey
    name: str
    relationship: str
    mobile: str
    no_contact: bool
    row: int


@dataclass
class RosterFile:
    pupils: dict[PupilKey, PupilRow] = field(default_factory=dict)
    contacts: list[ContactRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)


def _text(row: dict[str, str], column: str, label: str, limit: int) -> str:
    value = " ".join(row[column].split())
    if not value:
        raise ValueError(f"{label} is missing")
    if len(value) > limit:
        raise ValueError(f"{label} is longer than {limit} characters")
    return value


def _number(value: str, label: str) -> str:
    try:
        return normalise_number(value)
    except InvalidInput as err:
        raise ValueError(f"{label}: {err}") from None


def parse_roster(data: bytes) -> RosterFile:
    """Parse and check a roster file on its own (not against the database).

    Raises InvalidInput when the file itself is unreadable; row problems are collected in
    ``errors`` so that the report can name every bad row at once.
    """
    roster = RosterFile()
    contact_names: dict[str, tuple[str, int]] = {}
    seen_links: dict[tuple[PupilKey, str], int] = {}
    for line, row in read_csv(data, required=REQUIRED, optional=OPTIONAL):
        try:
            first = _text(row, "pupil_first_name", "the pupil's first name", 100)
            last = _text(row, "pupil_last_name", "the pupil's last name", 100)
            year = _text(row, "year_group", "the year group", 20)
            name = _text(row, "contact_name", "the contact's name", 120)
            relationship = _text(row, "relationship", "the relationship", 40)
            mobile = _number(row["mobile"], "mobile")
            restricted = parse_flag(row["image_restricted"], "image_restricted")
            no_contact = parse_flag(row["no_contact"], "no_contact")
            own = _number(row["pupil_mobile"], "pupil_mobile") if row["pupil_mobile"] else None
        except ValueError as err:
            roster.errors.append(RowError(line, str(err)))
            continue

        key = pupil_key(first, last, year)
        pupil = roster.pupils.get(key)
        if pupil is None:
            roster.pupils[key] = PupilRow(key, first, last, year, restricted, own, line)
        elif (pupil.image_restricted, pupil.own_mobile) != (restricted, own):
            roster.errors.append(
                RowError(
                    line,
                    f"{first} {last} has a different image_restricted or pupil_mobile "
                    f"from row {pupil.row}",
                )
            )
            continue

        if (key, mobile) in seen_links:
            roster.errors.append(
                RowError(
                    line,
                    f"duplicate contact: {row['mobile']} is already given for {first} {last} "
                    f"on row {seen_links[key, mobile]}",
                )
            )
            continue
        earlier = contact_names.get(mobile)
        if earlier and earlier[0].lower() != name.lower():
            roster.errors.append(
                RowError(
                    line,
                    f"{row['mobile']} is given for {name} here and for {earlier[0]} on row "
                    f"{earlier[1]}; one number is one person",
                )
            )
            continue
        contact_names.setdefault(mobile, (name, line))
        seen_links[key, mobile] = line
        roster.contacts.append(ContactRow(key, name, relationship, mobile, no_contact, line))

    own_numbers = {p.own_mobile: p for p in roster.pupils.values() if p.own_mobile}
    for contact in roster.contacts:
        pupil = own_numbers.get(contact.mobile)
        if pupil is not None:
            roster.errors.append(
                RowError(
                    contact.row,
                    f"the contact's mobile is {pupil.first_name} {pupil.last_name}'s own "
                    "number; staff never text pupils (policy 28)",
                )
            )
    roster.errors.sort(key=lambda e: e.row)
    return roster

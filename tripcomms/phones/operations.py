"""State changes for the phone pool. Each takes the acting user (or a system actor), checks the
rule, changes rows, writes its audit event and flushes; none commits.

Audit data holds ids, labels and flags, never a phone number.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from tripcomms import csvfiles
from tripcomms.audit.operations import SystemActor, record
from tripcomms.auth.models import StaffNumber, User
from tripcomms.errors import Conflict, InvalidInput, NotFound, PolicyError
from tripcomms.extensions import db
from tripcomms.mobile import normalise_number
from tripcomms.phones.models import (
    STATUS_AFTER_RETURN,
    Booking,
    BookingStatus,
    Loan,
    Phone,
    PhoneEvent,
    PhoneStatus,
    ReturnCondition,
)
from tripcomms.phones.queries import (
    RETURN_GRACE,
    clashing_bookings,
    clashing_loans,
    describe_booking,
    describe_moment,
    last_loan,
    open_loan,
)
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow

Actor = User | SystemActor

LABEL_MAX = 60
SERIAL_MAX = 60
NOTES_MAX = 1000
SHORT_NOTE_MAX = 500
# Longest booking or loan: a residential trip is a week; a month leaves room without letting a
# typo ("2036") hold a phone for ten years.
LONGEST_PERIOD = timedelta(days=31)
MOST_PHONES_PER_BOOKING = 50
# Statuses a person may set by hand; "on loan" comes only with a loan.
MANUAL_STATUSES = (PhoneStatus.AVAILABLE, PhoneStatus.REPAIR, PhoneStatus.LOST)

IMPORT_MAX_BYTES = 1_000_000
IMPORT_MAX_ROWS = 1000
IMPORT_COLUMNS = ("label", "number", "serial")


# --- Small checks ---------------------------------------------------------------------------


def _actor_id(actor: Actor) -> int | None:
    return actor.id if isinstance(actor, User) else None


def _actor_name(actor: Actor) -> str:
    return "user" if isinstance(actor, User) else actor.name


def _clean_line(value: str | None, field: str, label: str, limit: int, required: bool) -> str:
    cleaned = " ".join((value or "").split())
    if required and not cleaned:
        raise InvalidInput(f"{label} is required", field=field)
    if len(cleaned) > limit:
        raise InvalidInput(f"{label} is at most {limit} characters", field=field)
    return cleaned


def _clean_notes(value: str | None, field: str, limit: int) -> str:
    cleaned = (value or "").strip()
    if len(cleaned) > limit:
        raise InvalidInput(f"notes are at most {limit} characters", field=field)
    return cleaned


def _check_label_free(label: str, phone: Phone | None) -> None:
    query = select(Phone.id).where(func.lower(Phone.label) == func.lower(label))
    if phone is not None:
        query = query.where(Phone.id != phone.id)
    if db.session.scalar(query) is not None:
        raise Conflict(f"there is already a phone labelled {label!r}", field="label")


def _school_number(text: str, phone: Phone | None) -> str:
    """The number in E.164, checked to be a mobile that no other phone and no member of staff
    has. Raises InvalidInput, Conflict or PolicyError against the ``number`` field."""
    try:
        number = normalise_number(text)
    except InvalidInput as err:
        raise InvalidInput(err.message, field="number") from None
    shown = (text or "").strip()
    query = select(Phone).where(Phone.number == number)
    if phone is not None:
        query = query.where(Phone.id != phone.id)
    other = db.session.scalar(query)
    if other is not None:
        raise Conflict(f"{shown} is already the number of {other.label}", field="number")
    if db.session.scalar(select(StaffNumber.id).where(StaffNumber.number == number)):
        raise PolicyError(
            f"{shown} is registered as a member of staff's personal number; a school phone "
            "needs a school SIM (policy 50)",
            field="number",
        )
    return number


def _lock_phones(phone_ids: Iterable[int]) -> None:
    """Make changes to the same phones take turns until this transaction ends, so that each
    sees what the one before it committed: row locks on PostgreSQL, taken in id order so that
    two bookers of overlapping sets cannot deadlock; on SQLite a write, which takes the
    database's write lock (waiting for the writer before) and starts a fresh snapshot."""
    ids = sorted(set(phone_ids))
    if not ids:
        return
    if db.session.get_bind().dialect.name == "sqlite":
        table = Phone.__table__
        db.session.execute(update(table).where(table.c.id.in_(ids)).values(status=table.c.status))
    else:
        db.session.execute(
            select(Phone.id).where(Phone.id.in_(ids)).order_by(Phone.id).with_for_update()
        )


def _fresh(phone: Phone) -> Phone:
    """The phone locked and re-read, as the transaction before this one left it."""
    _lock_phones([phone.id])
    fresh = db.session.scalar(
        select(Phone).where(Phone.id == phone.id).execution_options(populate_existing=True)
    )
    if fresh is None:
        raise NotFound("that phone no longer exists")
    return fresh


def _note_status(
    actor: Actor,
    phone: Phone,
    to_status: PhoneStatus,
    kind: str,
    *,
    note: str = "",
    loan: Loan | None = None,
    new: bool = False,
) -> None:
    """Set the phone's status and keep the change in its history."""
    from_status = None if new else phone.status
    phone.status = to_status
    db.session.add(
        PhoneEvent(
            phone=phone,
            created_at=utcnow(),
            actor_id=_actor_id(actor),
            actor=_actor_name(actor),
            kind=kind,
            from_status=from_status,
            to_status=to_status,
            note=note,
            loan=loan,
        )
    )


# --- Phones ---------------------------------------------------------------------------------


def _new_phone(actor: Actor, label: str, number: str, serial: str, notes: str, kind: str) -> Phone:
    phone = Phone(label=label, number=number, serial=serial, notes=notes, created_at=utcnow())
    db.session.add(phone)
    _note_status(actor, phone, PhoneStatus.AVAILABLE, kind, new=True)
    db.session.flush()
    return phone


def add_phone(actor: Actor, *, label: str, number: str, serial: str = "", notes: str = "") -> Phone:
    """Add a phone to the pool, available. Raises InvalidInput for a missing or over-long field
    or a number that is not a valid mobile; Conflict when the label or number is another
    phone's; PolicyError when the number is a member of staff's personal number."""
    label = _clean_line(label, "label", "a label", LABEL_MAX, True)
    serial = _clean_line(serial, "serial", "the serial or IMEI", SERIAL_MAX, False)
    notes = _clean_notes(notes, "notes", NOTES_MAX)
    _check_label_free(label, None)
    number = _school_number(number, None)
    phone = _new_phone(actor, label, number, serial, notes, "added")
    record(actor, "phone.added", phone, label=label, serial=bool(serial))
    return phone


def update_phone(
    actor: Actor, phone: Phone, *, label: str, number: str, serial: str = "", notes: str = ""
) -> Phone:
    """Change a phone's label, number, serial or notes. Raises as ``add_phone`` does; the
    number of a phone out on loan cannot change, since the relay is texting it."""
    label = _clean_line(label, "label", "a label", LABEL_MAX, True)
    serial = _clean_line(serial, "serial", "the serial or IMEI", SERIAL_MAX, False)
    notes = _clean_notes(notes, "notes", NOTES_MAX)
    _check_label_free(label, phone)
    number = _school_number(number, phone)
    if number != phone.number and phone.status == PhoneStatus.ON_LOAN:
        raise Conflict(
            f"{phone.label} is on loan; change its number after it comes back", field="number"
        )
    changes: dict[str, object] = {}
    for name, value in (("label", label), ("number", number), ("serial", serial), ("notes", notes)):
        if getattr(phone, name) != value:
            # The label is not personal; the rest are flagged, not copied into the log.
            changes[name] = value if name == "label" else True
            setattr(phone, name, value)
    if changes:
        db.session.flush()
        record(actor, "phone.updated", phone, **changes)
    return phone


def set_phone_status(actor: Actor, phone: Phone, status: PhoneStatus | str, note: str = "") -> None:
    """Set a phone's status by hand: available, repair or lost (back from repair, found, ...).

    Raises InvalidInput for any other status; Conflict while the phone is on loan (return it
    instead) or when it already has that status.
    """
    try:
        status = PhoneStatus(status)
    except ValueError:
        raise InvalidInput(f"{status!r} is not a phone status", field="status") from None
    if status not in MANUAL_STATUSES:
        choices = ", ".join(s.value for s in MANUAL_STATUSES)
        raise InvalidInput(f"a phone can be set to {choices} by hand", field="status")
    note = _clean_line(note, "note", "the note", SHORT_NOTE_MAX, False)
    phone = _fresh(phone)
    if phone.status == PhoneStatus.ON_LOAN:
        raise Conflict(f"{phone.label} is on loan; record its return instead", field="status")
    if phone.status == status:
        raise Conflict(f"{phone.label} is already {status.value}", field="status")
    before = phone.status
    _note_status(actor, phone, status, "by hand", note=note)
    db.session.flush()
    record(actor, "phone.status_changed", phone, before=before.value, after=status.value)


def retire_phone(actor: Actor, phone: Phone, note: str = "") -> None:
    """Take a phone out of the pool for good. Raises Conflict while it is on loan or booked
    for a trip that has not ended (cancel the booking first) or if it is already retired."""
    note = _clean_line(note, "note", "the note", SHORT_NOTE_MAX, False)
    phone = _fresh(phone)
    if phone.status == PhoneStatus.RETIRED:
        raise Conflict(f"{phone.label} is already retired")
    loan = open_loan(phone.id)
    if loan is not None or phone.status == PhoneStatus.ON_LOAN:
        holder = f" to {loan.holder.name} for {loan.trip.title}" if loan else ""
        raise Conflict(f"{phone.label} is on loan{holder}; it cannot be retired until it is back")
    now = utcnow()
    upcoming = clashing_bookings([phone.id], now, now + timedelta(days=3650))
    if upcoming:
        raise Conflict(
            f"{phone.label} is booked for {describe_booking(upcoming[0])}; "
            "cancel that booking before retiring it"
        )
    before = phone.status
    _note_status(actor, phone, PhoneStatus.RETIRED, "retired", note=note)
    db.session.flush()
    record(actor, "phone.retired", phone, before=before.value)


# --- Import ---------------------------------------------------------------------------------


class ImportRejected(InvalidInput):
    """A phones file with problems: nothing was imported. ``problems`` lists them by row."""

    def __init__(self, problems: list[str]) -> None:
        count = len(problems)
        head = (
            "nothing imported: "
            if count == 1
            else f"nothing imported; {count} rows have problems: "
        )
        super().__init__(head + "; ".join(problems))
        self.problems = problems


def decode_csv(data: bytes, *, limit: int = IMPORT_MAX_BYTES) -> str:
    """The text of an uploaded phones CSV; raises InvalidInput saying what is wrong with it."""
    return csvfiles.decode_csv(data, limit=limit, field="file")


@dataclass
class _Row:
    line: int
    label: str = ""
    number: str = ""
    serial: str = ""
    problem: str = ""


def _read_phone_rows(text: str) -> list[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    rows = [(n, cells) for n, cells in enumerate(reader, start=1) if any(c.strip() for c in cells)]
    if not rows:
        raise InvalidInput("the file is empty", field="file")
    header = rows[0][1]
    columns = [cell.strip().lower() for cell in header]
    expected = ",".join(IMPORT_COLUMNS)
    unknown = [c for c in columns if c not in IMPORT_COLUMNS]
    if unknown or "label" not in columns or "number" not in columns:
        raise InvalidInput(
            f"the first row must be the header {expected} (found {','.join(columns)[:80]})",
            field="file",
        )
    if len(set(columns)) != len(columns):
        raise InvalidInput("the header names a column twice", field="file")
    if len(rows) - 1 > IMPORT_MAX_ROWS:
        raise InvalidInput(f"a file can add at most {IMPORT_MAX_ROWS} phones", field="file")
    result = []
    for line, cells in rows[1:]:
        if len(cells) > len(columns):
            result.append(_Row(line, problem="it has more cells than the header"))
            continue
        values = dict(zip(columns, cells + [""] * (len(columns) - len(cells)), strict=True))
        result.append(
            _Row(line, values.get("label", ""), values.get("number", ""), values.get("serial", ""))
        )
    return result


def import_phones(actor: Actor, data: bytes) -> list[Phone]:
    """Add every phone in a CSV file (header ``label,number,serial``), or none of them.

    Accepts UTF-8 with or without a byte-order mark and any line endings. Raises InvalidInput
    for a file that is not a phones CSV, and ImportRejected listing each bad row (by its row
    number in the spreadsheet, the header being row 1) when any row is wrong.
    """
    rows = _read_phone_rows(decode_csv(data))
    if not rows:
        raise InvalidInput("the file has a header but no phones", field="file")
    problems: list[str] = []
    cleaned: list[tuple[str, str, str]] = []
    seen_labels: dict[str, int] = {}
    seen_numbers: dict[str, int] = {}
    for row in rows:
        try:
            if row.problem:
                raise InvalidInput(row.problem)
            label = _clean_line(row.label, "label", "a label", LABEL_MAX, True)
            serial = _clean_line(row.serial, "serial", "the serial or IMEI", SERIAL_MAX, False)
            _check_label_free(label, None)
            number = _school_number(row.number, None)
            if label.lower() in seen_labels:
                raise Conflict(f"label {label!r} is also on row {seen_labels[label.lower()]}")
            if number in seen_numbers:
                raise Conflict(f"number {row.number.strip()} is also on row {seen_numbers[number]}")
        except (InvalidInput, Conflict, PolicyError) as err:
            problems.append(f"row {row.line}: {err.message}")
            continue
        seen_labels[label.lower()] = row.line
        seen_numbers[number] = row.line
        cleaned.append((label, number, serial))
    if problems:
        raise ImportRejected(problems)
    phones = []
    for label, number, serial in cleaned:
        phone = _new_phone(actor, label, number, serial, "", "imported")
        record(actor, "phone.added", phone, label=label, serial=bool(serial), imported=True)
        phones.append(phone)
    record(actor, "phones.imported", None, phone_ids=[p.id for p in phones])
    return phones


# --- Bookings -------------------------------------------------------------------------------


def default_period(trip: Trip) -> tuple[datetime, datetime]:
    """The trip's start to its end plus the return grace."""
    return trip.starts_at, trip.ends_at + RETURN_GRACE


def _check_period(starts_at: datetime, ends_at: datetime, now: datetime) -> None:
    if ends_at <= starts_at:
        raise InvalidInput("the booking must end after it starts", field="ends_at")
    if ends_at <= now:
        raise InvalidInput(
            "that period is in the past; a booking must end later than now", field="ends_at"
        )
    if ends_at - starts_at > LONGEST_PERIOD:
        raise InvalidInput(f"a booking is at most {LONGEST_PERIOD.days} days long", field="ends_at")


def _check_trip_open(trip: Trip) -> None:
    if trip.cancelled_at is not None:
        raise Conflict(f"{trip.title} is cancelled")


def _clash_message(phone: Phone, trip: Trip, bookings: list[Booking], loans: list[Loan]) -> str:
    """Why ``phone`` cannot be booked for ``trip``: the loan holding it, else the booking."""
    if loans:
        loan = loans[0]
        if loan.trip_id == trip.id:
            return f"{phone.label} is already on loan to {loan.holder.name} for this trip"
        return (
            f"{phone.label} is on loan to {loan.holder.name} for {loan.trip.title} "
            f"until {describe_moment(loan.due_at)}"
        )
    booking = bookings[0]
    if booking.trip_id == trip.id:
        return f"{phone.label} is already booked for this trip ({describe_booking(booking)})"
    return f"{phone.label} is booked for {describe_booking(booking)}"


def book_phones(
    actor: Actor,
    trip: Trip,
    *,
    count: int | None = None,
    phones: Iterable[Phone] = (),
    starts_at: datetime | None = None,
    ends_at: datetime | None = None,
) -> list[Booking]:
    """Hold phones for a trip over [starts_at, ends_at), by default the trip's start to its end
    plus 12 hours: either the named ``phones``, or ``count`` of whichever are free (chosen
    now, by label, so that each phone's diary shows what it is promised to).

    Raises InvalidInput for a period in the past, backwards or over a month, or no phones
    asked for; Conflict naming the other trip when a named phone is booked or on loan over
    the period, when it is lost or retired, when too few are free, or when the trip is
    cancelled. Either every phone asked for is booked or none is.
    """
    now = utcnow()
    _check_trip_open(trip)
    default_start, default_end = default_period(trip)
    starts_at = starts_at or default_start
    ends_at = ends_at or default_end
    _check_period(starts_at, ends_at, now)
    named = list(dict.fromkeys(phones))
    if named and count:
        raise InvalidInput(
            "either choose phones or give a number of phones, not both", field="count"
        )
    if not named:
        if not count or count < 1:
            raise InvalidInput("choose phones or give a number of phones to book", field="count")
        if count > MOST_PHONES_PER_BOOKING:
            raise InvalidInput(f"at most {MOST_PHONES_PER_BOOKING} phones at a time", field="count")
    chosen: list[Phone]
    if named:
        _lock_phones(p.id for p in named)
        db.session.scalars(
            select(Phone)
            .where(Phone.id.in_([p.id for p in named]))
            .execution_options(populate_existing=True)
        ).all()
        for phone in named:
            if phone.status in (PhoneStatus.LOST, PhoneStatus.RETIRED):
                raise Conflict(
                    f"{phone.label} is {phone.status.value} and cannot be booked", field="phones"
                )
        ids = [p.id for p in named]
        bookings = clashing_bookings(ids, starts_at, ends_at)
        loans = clashing_loans(ids, starts_at, ends_at, now=now)
        for phone in named:
            mine_b = [b for b in bookings if b.phone_id == phone.id]
            mine_l = [loan for loan in loans if loan.phone_id == phone.id]
            if mine_b or mine_l:
                raise Conflict(_clash_message(phone, trip, mine_b, mine_l), field="phones")
        chosen = named
    else:
        usable = Phone.status.in_((PhoneStatus.AVAILABLE, PhoneStatus.ON_LOAN))
        _lock_phones(db.session.scalars(select(Phone.id).where(usable)))
        candidates = list(
            db.session.scalars(
                select(Phone)
                .where(usable)
                .order_by(Phone.label)
                .execution_options(populate_existing=True)
            )
        )
        ids = [p.id for p in candidates]
        held = {b.phone_id for b in clashing_bookings(ids, starts_at, ends_at)}
        held |= {loan.phone_id for loan in clashing_loans(ids, starts_at, ends_at, now=now)}
        free = [p for p in candidates if p.id not in held]
        if len(free) < count:
            raise Conflict(
                f"only {len(free)} phone{'s are' if len(free) != 1 else ' is'} free "
                f"for that period; {count} asked for",
                field="count",
            )
        chosen = free[:count]
    created = [
        Booking(
            phone=phone,
            trip=trip,
            starts_at=starts_at,
            ends_at=ends_at,
            created_at=now,
            created_by_id=_actor_id(actor),
        )
        for phone in chosen
    ]
    db.session.add_all(created)
    db.session.flush()
    for booking in created:
        record(
            actor,
            "booking.created",
            booking,
            trip_id=trip.id,
            phone_id=booking.phone_id,
            starts_at=starts_at.isoformat(),
            ends_at=ends_at.isoformat(),
            chosen_by="office" if named else "pool",
        )
    return created


def cancel_booking(actor: Actor, booking: Booking) -> None:
    """Release a booking. Raises Conflict if it is already cancelled or a loan fulfilled it."""
    if booking.status == BookingStatus.CANCELLED:
        raise Conflict(f"that booking of {booking.phone.label} is already cancelled")
    if booking.status == BookingStatus.FULFILLED:
        raise Conflict(
            f"{booking.phone.label} has been issued against that booking; return it instead"
        )
    booking.status = BookingStatus.CANCELLED
    booking.cancelled_at = utcnow()
    booking.cancelled_by_id = _actor_id(actor)
    db.session.flush()
    record(actor, "booking.cancelled", booking, trip_id=booking.trip_id, phone_id=booking.phone_id)


# --- Loans ----------------------------------------------------------------------------------


def _already_on_loan(phone: Phone, loan: Loan) -> Conflict:
    return Conflict(
        f"{phone.label} is already on loan to {loan.holder.name} for {loan.trip.title}",
        field="phone_id",
    )


def _committed_open_loan_message(phone_id: int) -> str | None:
    """Who holds the phone now, read on a connection of its own: after a failed flush this
    session can run no query until its owner rolls back, and the loan that won the race is
    committed, so a fresh connection sees it."""
    with db.engine.connect() as conn:
        row = conn.execute(
            select(Phone.label, User.name, Trip.title)
            .select_from(Loan)
            .join(Phone, Loan.phone_id == Phone.id)
            .join(User, Loan.holder_id == User.id)
            .join(Trip, Loan.trip_id == Trip.id)
            .where(Loan.phone_id == phone_id, Loan.returned_at.is_(None))
        ).first()
    if row is None:
        return None
    label, holder, title = row
    return f"{label} is already on loan to {holder} for {title}"


def issue_loan(
    actor: Actor,
    phone: Phone,
    trip: Trip,
    holder: User,
    *,
    due_at: datetime | None = None,
    condition_notes: str = "",
) -> Loan:
    """Issue a phone to a member of a trip's staff (its leader or accompanying staff) until
    ``due_at`` (by default the trip's end plus 12 hours). Any booking of this phone for this
    trip over the loan is fulfilled by it.

    Raises Conflict when the phone is on loan ("already on loan to ... for ..."), lost,
    retired or in repair, when it is booked for another trip during the loan (naming it), or
    when the trip is cancelled or over; InvalidInput when the holder is not on the trip's
    staff or the due time is not in the future. Two issues of the same phone at the same
    moment: the database lets one through and the other gets the same "already on loan".
    """
    now = utcnow()
    phone = _fresh(phone)
    loan = open_loan(phone.id)
    if loan is not None:
        raise _already_on_loan(phone, loan)
    if phone.status != PhoneStatus.AVAILABLE:
        reason = {
            PhoneStatus.REPAIR: "in repair",
            PhoneStatus.LOST: "lost",
            PhoneStatus.RETIRED: "retired",
            PhoneStatus.ON_LOAN: "marked on loan",
        }[phone.status]
        raise Conflict(f"{phone.label} is {reason} and cannot be issued", field="phone_id")
    _check_trip_open(trip)
    if trip.ends_at <= now:
        raise Conflict(f"{trip.title} is over; phones are issued to trips still to come")
    if holder.id not in trip.staff_ids:
        raise InvalidInput(
            f"{holder.name} is not the leader or accompanying staff of {trip.title}",
            field="holder_id",
        )
    if not holder.active:
        raise InvalidInput(f"{holder.name}'s account is deactivated", field="holder_id")
    due_at = due_at or trip.ends_at + RETURN_GRACE
    if due_at <= now:
        raise InvalidInput("the due-back time must be in the future", field="due_at")
    if due_at - now > LONGEST_PERIOD:
        raise InvalidInput(f"a loan is at most {LONGEST_PERIOD.days} days long", field="due_at")
    condition_notes = _clean_line(
        condition_notes, "condition_out", "the condition notes", SHORT_NOTE_MAX, False
    )
    bookings = clashing_bookings([phone.id], now, due_at)
    others = [b for b in bookings if b.trip_id != trip.id]
    if others:
        raise Conflict(
            f"{phone.label} is booked for {describe_booking(others[0])}; choose another "
            "phone or an earlier due-back time",
            field="phone_id",
        )
    loan = Loan(
        phone=phone,
        trip=trip,
        holder=holder,
        issued_at=now,
        issued_by_id=_actor_id(actor),
        due_at=due_at,
        condition_out=condition_notes,
    )
    db.session.add(loan)
    fulfilled = [b for b in bookings if b.trip_id == trip.id]
    for booking in fulfilled:
        booking.status = BookingStatus.FULFILLED
        booking.loan = loan
    _note_status(actor, phone, PhoneStatus.ON_LOAN, "issued", loan=loan)
    phone_id = phone.id  # a failed flush expires every object in the session
    try:
        db.session.flush()
    except IntegrityError:
        # Someone issued this phone between our check and our insert, and the unique index
        # on open loans refused the second one. The caller rolls back on the Conflict.
        message = _committed_open_loan_message(phone_id)
        if message is None:
            raise
        raise Conflict(message, field="phone_id") from None
    record(
        actor,
        "loan.issued",
        loan,
        phone_id=phone.id,
        trip_id=trip.id,
        holder_id=holder.id,
        due_at=due_at.isoformat(),
        fulfilled_booking_ids=[b.id for b in fulfilled],
    )
    return loan


def return_loan(
    actor: Actor,
    loan: Loan,
    *,
    condition: ReturnCondition | str = ReturnCondition.OK,
    charger_returned: bool | None = None,
    texts_deleted: bool | None = None,
    notes: str = "",
) -> Loan:
    """Record a loaned phone coming back (or not): ok makes it available, damaged puts it in
    repair, lost marks it lost. The checklist (charger back, texts deleted from the handset)
    is kept on the loan; None means it was not asked.

    Raises InvalidInput for an unknown condition or over-long notes; Conflict when the loan
    was already returned.
    """
    try:
        condition = ReturnCondition(condition)
    except ValueError:
        choices = ", ".join(c.value for c in ReturnCondition)
        raise InvalidInput(f"condition must be one of {choices}", field="condition") from None
    notes = _clean_line(notes, "notes", "the return notes", SHORT_NOTE_MAX, False)
    _fresh(loan.phone)
    db.session.refresh(loan)  # returned a moment ago by someone else?
    if loan.returned_at is not None:
        raise Conflict(
            f"{loan.phone.label} was already returned on {describe_moment(loan.returned_at)}"
        )
    now = utcnow()
    loan.returned_at = now
    loan.returned_by_id = _actor_id(actor)
    loan.return_condition = condition
    loan.return_notes = notes
    loan.charger_returned = charger_returned
    loan.texts_deleted = texts_deleted
    _note_status(
        actor, loan.phone, STATUS_AFTER_RETURN[condition], "returned", note=notes, loan=loan
    )
    db.session.flush()
    record(
        actor,
        "loan.returned",
        loan,
        phone_id=loan.phone_id,
        trip_id=loan.trip_id,
        condition=condition.value,
        charger_returned=charger_returned,
        texts_deleted=texts_deleted,
        late=now > loan.due_at,
    )
    return loan


def return_phone(actor: Actor, phone: Phone, **kwargs) -> Loan:
    """Return the phone's open loan (see ``return_loan``). Raises Conflict when it is not on
    loan, saying when it last came back."""
    loan = open_loan(phone.id)
    if loan is None:
        last = last_loan(phone.id)
        if last is not None and last.returned_at is not None:
            raise Conflict(
                f"{phone.label} is not on loan; it was returned on "
                f"{describe_moment(last.returned_at)}"
            )
        raise Conflict(f"{phone.label} is not on loan")
    return return_loan(actor, loan, **kwargs)

"""Pages for the phone pool (office and head) and each trip's phones page.

Phone management is for the office (the head holds the office's roles). A trip's phones page is
also open, read-only, to whoever may see the trip, and is loaded through ``trip_or_404``.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import selectinload
from wtforms.fields.choices import SelectChoice

from tripcomms.auth.access import one_or_404, role_required
from tripcomms.auth.models import Role, User
from tripcomms.errors import Conflict, DomainError, InvalidInput
from tripcomms.extensions import db
from tripcomms.forms import FIRST_DAY, LAST_DAY, apply_domain_error, carry_out, refuse_clash
from tripcomms.listing import listing, listing_url
from tripcomms.localtime import LONDON, parse_local, to_local
from tripcomms.phones import (
    home,  # noqa: F401  (registers the office's home-page section)
    hooks,  # noqa: F401  (relay endpoints and trip-page parts)
)
from tripcomms.phones import operations as ops
from tripcomms.phones.forms import (
    STATUS_LABELS,
    BookingForm,
    ImportForm,
    IssueForm,
    PeriodForm,
    PhoneForm,
    RetireForm,
    ReturnForm,
    StatusForm,
)
from tripcomms.phones.models import (
    Booking,
    BookingStatus,
    Loan,
    Phone,
    PhoneEvent,
    PhoneStatus,
    ReturnCondition,
)
from tripcomms.phones.queries import (
    availability,
    calendar,
    describe_lateness,
    describe_moment,
    describe_period,
    open_loan,
    phone_events_query,
    phone_loans_query,
    trip_bookings,
    trip_loans,
    trip_phone_summary,
    upcoming_bookings,
)
from tripcomms.trips.access import trip_or_404
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow

bp = Blueprint("phones", __name__)

CALENDAR_DAYS = 28


@bp.app_template_filter("period")
def _period_filter(starts_at: datetime, ends_at: datetime) -> str:
    return describe_period(starts_at, ends_at)


@bp.app_template_filter("lateness")
def _lateness_filter(due_at: datetime, now: datetime | None = None) -> str:
    return describe_lateness(due_at, now)


@bp.app_template_global("phone_status_label")
def _status_label(status: PhoneStatus) -> str:
    return STATUS_LABELS[PhoneStatus(status)]


bp.add_app_template_global(listing_url, "listing_url")
# The trip page (another package's) includes phones/_trip_summary.html, which calls this.
bp.add_app_template_global(trip_phone_summary, "trip_phone_summary")


def _me() -> User:
    return current_user._get_current_object()


def _local_input(value: datetime | None) -> str:
    """A UTC time as a datetime-local input's value, in London time."""
    local = to_local(value)
    return local.strftime("%Y-%m-%dT%H:%M") if local else ""


def _optional_time(text: str | None, field: str, what: str) -> datetime | None:
    if not (text or "").strip():
        return None
    try:
        return parse_local(text, what=what)
    except InvalidInput as err:
        raise InvalidInput(err.message, field=field) from None


def _phone_or_404(phone_id: int) -> Phone:
    return one_or_404(select(Phone).where(Phone.id == phone_id))


# --- The pool -------------------------------------------------------------------------------

PHONE_SORTS = {
    "label": ("Label", [Phone.label]),
    "number": ("Number", [Phone.number]),
    "status": ("Status", [Phone.status, Phone.label]),
    "added": ("Added", [Phone.created_at.desc(), Phone.id.desc()]),
}


@bp.route("/phones")
@role_required(Role.OFFICE)
def phones():
    """The pool, paged and sorted; with a period, whether each phone is free over it."""
    show_all = request.args.get("show") == "all"
    query = select(Phone)
    if not show_all:
        query = query.where(Phone.status != PhoneStatus.RETIRED)
    page = listing(query, PHONE_SORTS, "label")
    period = PeriodForm(request.args)
    free = None
    if period.starts_at.data or period.ends_at.data:
        try:
            starts = _optional_time(period.starts_at.data, "starts_at", "the start")
            ends = _optional_time(period.ends_at.data, "ends_at", "the end")
            if starts is None or ends is None:
                raise InvalidInput("give both a start and an end", field="ends_at")
            if ends <= starts:
                raise InvalidInput("the end must be after the start", field="ends_at")
            free = availability(page.items, starts, ends)
        except InvalidInput as err:
            apply_domain_error(period, err)
    loans = {
        loan.phone_id: loan
        for loan in db.session.scalars(
            select(Loan)
            .where(Loan.phone_id.in_([p.id for p in page.items]), Loan.returned_at.is_(None))
            .options(selectinload(Loan.holder), selectinload(Loan.trip))
        )
    }
    return render_template(
        "phones/list.html",
        page=page,
        period=period,
        free=free,
        loans=loans,
        show_all=show_all,
        now=utcnow(),
    )


@bp.route("/phones/new", methods=["GET", "POST"])
@role_required(Role.OFFICE)
def new_phone():
    form = PhoneForm()
    if form.validate_on_submit():
        done = carry_out(
            lambda: ops.add_phone(
                _me(),
                label=form.label.data,
                number=form.number.data,
                serial=form.serial.data,
                notes=form.notes.data,
            ),
            form=form,
            success=lambda phone: f"{phone.label} is in the pool.",
            redirect_to=lambda phone: url_for("phones.phone", phone_id=phone.id),
        )
        if done is not None:
            return done
    return render_template("phones/form.html", form=form, phone=None)


@bp.route("/phones/import", methods=["GET", "POST"])
@role_required(Role.OFFICE)
def import_phones():
    form = ImportForm()
    problems: list[str] = []
    if form.validate_on_submit():
        try:
            added = ops.import_phones(_me(), form.file.data.read())
            db.session.commit()
        except ops.ImportRejected as err:
            db.session.rollback()
            problems = err.problems
        except DomainError as err:
            db.session.rollback()
            apply_domain_error(form, err, "file")
        except IntegrityError as err:
            # A phone of the file was added (or imported) by someone else at the same moment.
            apply_domain_error(form, Conflict(refuse_clash(err, "Not imported")), "file")
        else:
            flash(f"Imported {len(added)} phone{'s' if len(added) != 1 else ''}.", "success")
            return redirect(url_for("phones.phones"), code=303)
    return render_template("phones/import.html", form=form, problems=problems)


@bp.route("/phones/calendar")
@role_required(Role.OFFICE)
def phone_calendar():
    """Each phone's bookings and loans over four weeks, one cell per day."""
    today = datetime.now(LONDON).date()
    try:
        first = date.fromisoformat(request.args.get("from", ""))
    except ValueError:
        first = today
    if not FIRST_DAY <= first <= LAST_DAY:  # the page works out four weeks either side
        first = today
    page = listing(
        select(Phone).where(Phone.status != PhoneStatus.RETIRED),
        {"label": ("Phone", [Phone.label])},
        "label",
    )
    rows = calendar(page.items, first, CALENDAR_DAYS)
    days = [first + timedelta(days=n) for n in range(CALENDAR_DAYS)]
    # Each loan and booking once, under the table, for what a one-letter cell cannot say.
    details: dict[tuple[str, int], tuple[Phone, Loan | None, Booking | None]] = {}
    for row in rows:
        for cell in row.cells:
            for loan in cell.loans:
                details.setdefault(("loan", loan.id), (row.phone, loan, None))
            for booking in cell.bookings:
                details.setdefault(("booking", booking.id), (row.phone, None, booking))
    return render_template(
        "phones/calendar.html",
        page=page,
        rows=rows,
        days=days,
        details=list(details.values()),
        today=today,
        earlier=first - timedelta(days=CALENDAR_DAYS),
        later=first + timedelta(days=CALENDAR_DAYS),
    )


# --- One phone ------------------------------------------------------------------------------

NEWEST_FIRST = {
    "newest": ("Newest first", [Loan.issued_at.desc(), Loan.id.desc()]),
    "oldest": ("Oldest first", [Loan.issued_at, Loan.id]),
}
EVENTS_NEWEST_FIRST = {
    "newest": ("Newest first", [PhoneEvent.created_at.desc(), PhoneEvent.id.desc()]),
    "oldest": ("Oldest first", [PhoneEvent.created_at, PhoneEvent.id]),
}


def _render_phone(phone: Phone, status_form: StatusForm | None = None):
    loans = listing(
        phone_loans_query(phone.id),
        NEWEST_FIRST,
        "newest",
        per_page=10,
        page_arg="loans_page",
        sort_arg="loans_sort",
    )
    events = listing(
        phone_events_query(phone.id),
        EVENTS_NEWEST_FIRST,
        "newest",
        per_page=10,
        page_arg="events_page",
        sort_arg="events_sort",
    )
    return render_template(
        "phones/phone.html",
        phone=phone,
        current_loan=open_loan(phone.id),
        upcoming=upcoming_bookings(phone.id),
        loans=loans,
        events=events,
        status_form=status_form or StatusForm(formdata=None),
        retire_form=RetireForm(formdata=None),
        now=utcnow(),
    )


@bp.route("/phones/<int:phone_id>")
@role_required(Role.OFFICE)
def phone(phone_id: int):
    """A phone: where it is now, what it is booked for, its loans and its status history."""
    return _render_phone(_phone_or_404(phone_id))


@bp.route("/phones/<int:phone_id>/edit", methods=["GET", "POST"])
@role_required(Role.OFFICE)
def edit_phone(phone_id: int):
    phone = _phone_or_404(phone_id)
    form = PhoneForm(obj=None if request.method == "POST" else phone)
    if form.validate_on_submit():
        done = carry_out(
            lambda: ops.update_phone(
                _me(),
                phone,
                label=form.label.data,
                number=form.number.data,
                serial=form.serial.data,
                notes=form.notes.data,
            ),
            form=form,
            success=lambda _: f"Saved {phone.label}.",
            redirect_to=url_for("phones.phone", phone_id=phone.id),
        )
        if done is not None:
            return done
    return render_template("phones/form.html", form=form, phone=phone)


@bp.route("/phones/<int:phone_id>/status", methods=["POST"])
@role_required(Role.OFFICE)
def set_status(phone_id: int):
    phone = _phone_or_404(phone_id)
    form = StatusForm()
    if form.validate_on_submit():
        done = carry_out(
            lambda: ops.set_phone_status(_me(), phone, form.status.data, form.note.data),
            form=form,
            field="status",
            success=lambda _: f"{phone.label} is now {STATUS_LABELS[phone.status].lower()}.",
            redirect_to=url_for("phones.phone", phone_id=phone.id),
        )
        if done is not None:
            return done
    return _render_phone(phone, status_form=form)


@bp.route("/phones/<int:phone_id>/retire", methods=["POST"])
@role_required(Role.OFFICE)
def retire(phone_id: int):
    phone = _phone_or_404(phone_id)
    form = RetireForm()
    back = url_for("phones.phone", phone_id=phone.id)
    if not form.validate_on_submit():
        flash(
            "Not retired: " + "; ".join(e for errs in form.errors.values() for e in errs), "error"
        )
        return redirect(back, code=303)
    return carry_out(
        lambda: ops.retire_phone(_me(), phone, form.note.data),
        refused="Not retired",
        success=f"{phone.label} is retired.",
        redirect_to=back,
    )


# --- Loans across all trips -----------------------------------------------------------------

LOAN_SORTS = {
    "due": ("Due back", [Loan.due_at, Loan.id]),
    "issued": ("Issued", [Loan.issued_at.desc(), Loan.id.desc()]),
    "phone": ("Phone", [Phone.label, Loan.issued_at.desc()]),
    "trip": ("Trip", [Trip.title, Loan.issued_at.desc()]),
    "holder": ("Holder", [User.name, Loan.issued_at.desc()]),
}
LOAN_FILTERS = {"open": "Out now", "overdue": "Overdue", "returned": "Returned", "all": "All"}


@bp.route("/loans")
@role_required(Role.OFFICE)
def loans():
    """Loans across every trip: out now by default, or overdue, returned, all."""
    show = request.args.get("show", "open")
    if show not in LOAN_FILTERS:
        show = "open"
    now = utcnow()
    query = (
        select(Loan)
        .join(Phone, Loan.phone_id == Phone.id)
        .join(Trip, Loan.trip_id == Trip.id)
        .join(User, Loan.holder_id == User.id)
        .options(selectinload(Loan.phone), selectinload(Loan.trip), selectinload(Loan.holder))
    )
    if show == "open":
        query = query.where(Loan.returned_at.is_(None))
    elif show == "overdue":
        query = query.where(Loan.returned_at.is_(None), Loan.due_at <= now)
    elif show == "returned":
        query = query.where(Loan.returned_at.is_not(None))
    page = listing(query, LOAN_SORTS, "due" if show in ("open", "overdue") else "issued")
    return render_template("phones/loans.html", page=page, show=show, filters=LOAN_FILTERS, now=now)


# --- A trip's phones ------------------------------------------------------------------------


def _bookable_phones() -> list[Phone]:
    return list(
        db.session.scalars(
            select(Phone)
            .where(Phone.status.not_in((PhoneStatus.LOST, PhoneStatus.RETIRED)))
            .order_by(Phone.label)
        )
    )


def _booking_form(trip: Trip, form: BookingForm | None = None) -> BookingForm:
    if form is None:
        form = BookingForm(formdata=None)
        starts, ends = ops.default_period(trip)
        form.starts_at.data = _local_input(starts)
        form.ends_at.data = _local_input(ends)
    phones = _bookable_phones()
    starts, ends = ops.default_period(trip)
    free = availability(phones, starts, ends)
    choices = []
    for phone in phones:
        held = free[phone.id]
        note = ""
        if held.bookings:
            other = held.bookings[0]
            note = (
                " (booked for this trip)"
                if other.trip_id == trip.id
                else (f" (booked for {other.trip.title})")
            )
        elif held.loans:
            note = f" (on loan for {held.loans[0].trip.title})"
        elif phone.status == PhoneStatus.REPAIR:
            note = " (in repair)"
        choices.append(SelectChoice(phone.id, phone.label + note))
    form.phones.choices = choices
    return form


def _issue_form(trip: Trip, form: IssueForm | None = None) -> IssueForm:
    if form is None:
        form = IssueForm(formdata=None)
        form.due_at.data = _local_input(trip.ends_at + ops.RETURN_GRACE)
        form.holder_id.data = trip.leader_id
    booked_here = {
        b.phone_id
        for b in trip_bookings(trip.id)
        if b.status == BookingStatus.BOOKED and b.ends_at > utcnow()
    }
    phones = db.session.scalars(
        select(Phone).where(Phone.status == PhoneStatus.AVAILABLE).order_by(Phone.label)
    ).all()
    ordered = sorted(phones, key=lambda p: p.id not in booked_here)
    form.phone_id.choices = [
        SelectChoice(p.id, p.label + (" (booked for this trip)" if p.id in booked_here else ""))
        for p in ordered
    ]
    staff = [trip.leader, *(u for u in trip.staff if u.id != trip.leader_id)]
    form.holder_id.choices = [
        SelectChoice(u.id, u.name + (" (leader)" if u.id == trip.leader_id else ""))
        for u in staff
        if u.active
    ]
    return form


def _render_trip(
    trip: Trip, booking_form: BookingForm | None = None, issue_form: IssueForm | None = None
):
    manage = _me().has_role(Role.OFFICE)
    context = {
        "trip": trip,
        "manage": manage,
        "bookings": trip_bookings(trip.id, include_cancelled=True),
        "loans": trip_loans(trip.id),
        "now": utcnow(),
        "action_form": FlaskForm(formdata=None),
    }
    if manage:
        context["booking_form"] = _booking_form(trip, booking_form)
        context["issue_form"] = _issue_form(trip, issue_form)
    return render_template("phones/trip.html", **context)


@bp.route("/trips/<int:trip_id>/phones")
@login_required
def trip_phones(trip_id: int):
    """A trip's bookings and loans; the office books, issues and takes back from here."""
    return _render_trip(trip_or_404(_me(), trip_id))


@bp.route("/trips/<int:trip_id>/phones/book", methods=["POST"])
@role_required(Role.OFFICE)
def book(trip_id: int):
    trip = trip_or_404(_me(), trip_id)
    form = _booking_form(trip, BookingForm())
    if form.validate_on_submit():

        def book_chosen() -> list[Booking]:
            starts = _optional_time(form.starts_at.data, "starts_at", "the start")
            ends = _optional_time(form.ends_at.data, "ends_at", "the end")
            chosen = [db.session.get(Phone, phone_id) for phone_id in form.phones.data or []]
            if None in chosen:
                raise InvalidInput("one of the chosen phones no longer exists", field="phones")
            return ops.book_phones(
                _me(),
                trip,
                count=form.count.data,
                phones=chosen,
                starts_at=starts,
                ends_at=ends,
            )

        done = carry_out(
            book_chosen,
            form=form,
            field="count",
            success=lambda created: (
                f"Booked {', '.join(b.phone.label for b in created)} for {trip.title}."
            ),
            redirect_to=url_for("phones.trip_phones", trip_id=trip.id),
        )
        if done is not None:
            return done
    return _render_trip(trip, booking_form=form)


@bp.route("/trips/<int:trip_id>/phones/bookings/<int:booking_id>/cancel", methods=["POST"])
@role_required(Role.OFFICE)
def cancel_booking(trip_id: int, booking_id: int):
    trip = trip_or_404(_me(), trip_id)
    booking = one_or_404(
        select(Booking).where(Booking.id == booking_id, Booking.trip_id == trip.id)
    )
    if not FlaskForm().validate_on_submit():
        abort(400)
    return carry_out(
        lambda: ops.cancel_booking(_me(), booking),
        success=f"Booking of {booking.phone.label} cancelled.",
        redirect_to=url_for("phones.trip_phones", trip_id=trip.id),
    )


@bp.route("/trips/<int:trip_id>/phones/issue", methods=["POST"])
@role_required(Role.OFFICE)
def issue(trip_id: int):
    trip = trip_or_404(_me(), trip_id)
    form = _issue_form(trip, IssueForm())
    if form.validate_on_submit():

        def issue_chosen() -> Loan:
            phone = db.session.get(Phone, form.phone_id.data) if form.phone_id.data else None
            if phone is None:
                raise InvalidInput("choose a phone", field="phone_id")
            holder = db.session.get(User, form.holder_id.data) if form.holder_id.data else None
            if holder is None:
                raise InvalidInput("choose who takes the phone", field="holder_id")
            due = _optional_time(form.due_at.data, "due_at", "the due-back time")
            return ops.issue_loan(
                _me(), phone, trip, holder, due_at=due, condition_notes=form.condition_out.data
            )

        done = carry_out(
            issue_chosen,
            form=form,
            field="phone_id",
            success=lambda loan: (
                f"{loan.phone.label} issued to {loan.holder.name}, due back "
                f"{describe_moment(loan.due_at)}."
            ),
            redirect_to=url_for("phones.trip_phones", trip_id=trip.id),
        )
        if done is not None:
            return done
    return _render_trip(trip, issue_form=form)


def _returned(loan: Loan) -> None:
    """What the office is told when a phone is back: its status now, and what is missing."""
    phone = loan.phone
    flash(
        f"{phone.label} is back from {loan.holder.name}; it is now "
        f"{STATUS_LABELS[phone.status].lower()}.",
        "success",
    )
    if not loan.texts_deleted and loan.return_condition != ReturnCondition.LOST:
        flash(
            f"Delete the texts on {phone.label} before it goes out again: they hold "
            "parents' names and messages.",
            "warning",
        )
    if not loan.charger_returned and loan.return_condition != ReturnCondition.LOST:
        flash(f"The charger for {phone.label} is still to come back.", "warning")


@bp.route("/trips/<int:trip_id>/phones/loans/<int:loan_id>/return", methods=["GET", "POST"])
@role_required(Role.OFFICE)
def return_loan(trip_id: int, loan_id: int):
    """Take a phone back: its condition and the checklist."""
    trip = trip_or_404(_me(), trip_id)
    loan = one_or_404(select(Loan).where(Loan.id == loan_id, Loan.trip_id == trip.id))
    form = ReturnForm()
    if form.validate_on_submit():
        done = carry_out(
            lambda: ops.return_loan(
                _me(),
                loan,
                condition=form.condition.data,
                charger_returned=form.charger_returned.data,
                texts_deleted=form.texts_deleted.data,
                notes=form.notes.data,
            ),
            form=form,
            field="condition",
            # Returned meanwhile by someone else: nothing to correct in the form.
            flashed=(Conflict,),
            then=_returned,
            success=None,
            redirect_to=url_for("phones.trip_phones", trip_id=trip.id),
        )
        if done is not None:
            return done
    return render_template("phones/return.html", trip=trip, loan=loan, form=form)

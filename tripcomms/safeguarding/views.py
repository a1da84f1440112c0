"""Safeguarding pages: reporting a concern, the DSL's queue, subject access exports, and what
response times add to the home page and the trip page."""

from __future__ import annotations

import contextlib
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_login import current_user
from sqlalchemy import func, or_, select

from tripcomms.audit.access import (
    CONCERN_REPORTERS,
    log_trip_or_404,
    log_trips,
    message_or_404,
    own_trip_ids,
)
from tripcomms.audit.export import csv_chunks, export_query, export_rows
from tripcomms.audit.operations import record
from tripcomms.auth.access import role_required
from tripcomms.auth.models import Role, User
from tripcomms.errors import InvalidInput
from tripcomms.extensions import db
from tripcomms.forms import carry_out
from tripcomms.listing import paged, sorted_by
from tripcomms.main import home_section
from tripcomms.mobile import normalise_number
from tripcomms.safeguarding import operations as ops
from tripcomms.safeguarding.forms import CloseForm, ConcernForm, ReasonForm, SubjectAccessForm
from tripcomms.safeguarding.models import Concern, ConcernStatus
from tripcomms.safeguarding.queries import (
    HANDLERS,
    concerns_query,
    subject_access_conditions,
)
from tripcomms.safeguarding.responses import target, waiting_texts
from tripcomms.trips.models import Contact, Trip, TripContact
from tripcomms.trips.panels import trip_panel
from tripcomms.types import utcnow
from tripcomms.web import db_int

bp = Blueprint("safeguarding", __name__)

SHOWS = ("active", "closed", "all")


def _user() -> User:
    return current_user._get_current_object()


def _concern_or_404(concern_id: int) -> Concern:
    concern = db.session.get(Concern, concern_id)
    if concern is None:
        abort(404)
    return concern


# --- Reporting -------------------------------------------------------------------------------


def _subject(user: User) -> dict[str, Any]:
    """What the concern is about, from the address: a message, or a trip and a contact.
    404 when the user may not see it, as if it did not exist."""
    message_id = request.args.get("message", type=db_int)
    if message_id is not None:
        message = message_or_404(user, message_id)
        return {"message": message, "trip": message.trip, "contact": message.contact}
    trip_id = request.args.get("trip", type=db_int)
    contact_id = request.args.get("contact", type=db_int)
    if trip_id is None or contact_id is None:
        abort(404)
    trip = log_trip_or_404(user, trip_id)
    entry = db.session.scalar(
        select(TripContact).where(
            TripContact.trip_id == trip.id, TripContact.contact_id == contact_id
        )
    )
    if entry is None:
        abort(404)
    return {"message": None, "trip": trip, "contact": entry.contact, "code": entry.code}


@bp.route("/concerns/new", methods=["GET", "POST"])
@role_required(*CONCERN_REPORTERS)
def new_concern():
    user = _user()
    subject = _subject(user)
    form = ConcernForm()
    if form.validate_on_submit():
        if subject["message"] is not None:
            target_url = url_for("audit.message", message_id=subject["message"].id)
        else:
            target_url = url_for("main.home")
        done = carry_out(
            lambda: ops.report_concern(
                user,
                category=form.category.data,
                description=form.description.data,
                message=subject["message"],
                trip=subject["trip"],
                contact=subject["contact"],
            ),
            form=form,
            success=lambda concern: (
                f"Concern #{concern.id} reported. The safeguarding lead has it; thank you."
            ),
            redirect_to=target_url,
        )
        if done is not None:
            return done
    status = 422 if form.errors or form.form_errors else 200
    return render_template("safeguarding/concern_form.html", form=form, **subject), status


# --- The queue -------------------------------------------------------------------------------


@bp.route("/concerns")
@role_required(*HANDLERS)
def concerns():
    show = request.args.get("show", "active")
    if show not in SHOWS:
        show = "active"
    query, sort = sorted_by(
        concerns_query(show),
        {"raised": Concern.created_at, "updated": Concern.updated_at},
        default="-raised",
    )
    return render_template(
        "safeguarding/concerns.html", pagination=paged(query), sort=sort, show=show
    )


@bp.route("/concerns/<int:concern_id>")
@role_required(*HANDLERS)
def concern(concern_id: int):
    item = _concern_or_404(concern_id)
    return render_template(
        "safeguarding/concern.html",
        concern=item,
        investigate_form=ReasonForm(prefix="investigate"),
        close_form=CloseForm(prefix="close"),
        reopen_form=ReasonForm(prefix="reopen"),
    )


def _move(concern_id: int, form, apply, done: str):
    item = _concern_or_404(concern_id)
    if form.validate_on_submit():
        moved = carry_out(
            lambda: apply(item, form),
            form=form,
            field="reason",
            success=done,
            redirect_to=url_for("safeguarding.concern", concern_id=item.id),
        )
        if moved is not None:
            return moved
    forms = {
        "investigate_form": ReasonForm(prefix="investigate"),
        "close_form": CloseForm(prefix="close"),
        "reopen_form": ReasonForm(prefix="reopen"),
    }
    forms[f"{form._prefix.rstrip('-')}_form"] = form
    return render_template("safeguarding/concern.html", concern=item, **forms), 422


@bp.route("/concerns/<int:concern_id>/investigate", methods=["POST"])
@role_required(*HANDLERS)
def investigate(concern_id: int):
    return _move(
        concern_id,
        ReasonForm(prefix="investigate"),
        lambda item, form: ops.start_investigating(_user(), item, form.reason.data),
        "Marked as being investigated.",
    )


@bp.route("/concerns/<int:concern_id>/close", methods=["POST"])
@role_required(*HANDLERS)
def close(concern_id: int):
    return _move(
        concern_id,
        CloseForm(prefix="close"),
        lambda item, form: ops.close_concern(_user(), item, form.outcome.data, form.reason.data),
        "Concern closed.",
    )


@bp.route("/concerns/<int:concern_id>/reopen", methods=["POST"])
@role_required(*HANDLERS)
def reopen(concern_id: int):
    return _move(
        concern_id,
        ReasonForm(prefix="reopen"),
        lambda item, form: ops.reopen_concern(_user(), item, form.reason.data),
        "Concern reopened.",
    )


# --- Subject access --------------------------------------------------------------------------


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


@bp.route("/subject-access")
@role_required(*HANDLERS)
def subject_access():
    """Find a parent or carer, to export every message to and from them."""
    form = SubjectAccessForm(formdata=request.args)
    contacts = None
    if form.q.data and form.validate():
        wanted = form.q.data.strip()
        conditions = [
            func.lower(Contact.name).like(f"%{_escape_like(wanted.lower())}%", escape="\\")
        ]
        # Not a number: the name alone.
        with contextlib.suppress(InvalidInput):
            conditions.append(Contact.mobile == normalise_number(wanted))
        contacts = db.session.scalars(
            select(Contact).where(or_(*conditions)).order_by(Contact.name).limit(50)
        ).all()
    return render_template("safeguarding/subject_access.html", form=form, contacts=contacts)


@bp.route("/subject-access/<int:contact_id>.csv")
@role_required(*HANDLERS)
def subject_access_export(contact_id: int):
    """Every message to and from one contact, numbers in full, as CSV."""
    contact = db.session.get(Contact, contact_id)
    if contact is None:
        abort(404)
    record(_user(), "contact.subject_access", contact, contact_id=contact.id)
    db.session.commit()
    rows = export_rows(export_query(subject_access_conditions(contact)), full_numbers=True)
    stamp = utcnow().strftime("%Y%m%d")
    return Response(
        stream_with_context(csv_chunks(rows)),
        mimetype="text/csv",
        headers={
            "Content-Disposition": (
                f'attachment; filename="subject-access-contact-{contact.id}-{stamp}.csv"'
            )
        },
    )


# --- Home page and trip page -----------------------------------------------------------------


@home_section(*HANDLERS, template="safeguarding/_home_concerns.html")
def _concerns_home(user: User) -> dict[str, Any]:
    active = db.session.scalars(
        concerns_query("active").order_by(Concern.created_at.desc()).limit(5)
    ).all()
    counts = dict(
        db.session.execute(
            select(Concern.status, func.count())
            .where(Concern.status != ConcernStatus.CLOSED)
            .group_by(Concern.status)
        ).all()
    )
    return {
        "concerns": active,
        "open": counts.get(ConcernStatus.OPEN, 0),
        "investigating": counts.get(ConcernStatus.INVESTIGATING, 0),
    }


@home_section(Role.OFFICE, template="safeguarding/_home_waiting.html")
def _office_waiting(user: User) -> dict[str, Any]:
    """Parents left waiting past twice the target: the office chases the trip (policy 22h)."""
    late = 2 * target()
    return {
        "waiting": waiting_texts(older_than=late),
        "minutes": int(late.total_seconds() // 60),
        "heading": "Parents waiting too long for a reply",
    }


@home_section(Role.LEADER, template="safeguarding/_home_waiting.html")
def _leader_waiting(user: User) -> dict[str, Any]:
    return {
        "waiting": waiting_texts(trip_ids=own_trip_ids(user)),
        "minutes": int(target().total_seconds() // 60),
        "heading": "Parents waiting for your reply",
    }


@trip_panel("safeguarding/_trip_replies.html", order=60)
def _replies_panel(trip: Trip, user: User) -> dict[str, Any] | None:
    in_log = db.session.scalar(log_trips(user).where(Trip.id == trip.id)) is not None
    waiting = waiting_texts(trip_ids=[trip.id])
    if not waiting and not in_log:
        return None
    return {
        "waiting": waiting,
        "target_minutes": int(target().total_seconds() // 60),
        "in_log": in_log,
    }

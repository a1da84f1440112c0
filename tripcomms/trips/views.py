"""Trip pages: the list, a trip's page, creating and editing trips, uploading rosters."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tripcomms.auth.access import role_required
from tripcomms.auth.models import Role, User
from tripcomms.csvfiles import ImportRejected
from tripcomms.errors import DomainError
from tripcomms.extensions import db
from tripcomms.forms import apply_domain_error, carry_out, refuse_clash
from tripcomms.listing import page_of, paged, sorted_by
from tripcomms.localtime import local_to_utc, utc_to_local_naive
from tripcomms.main import home_section
from tripcomms.trips import operations as ops
from tripcomms.trips import queries
from tripcomms.trips.access import trip_or_404, visible_trips
from tripcomms.trips.forms import CancelTripForm, RosterUploadForm, TripForm
from tripcomms.trips.models import Trip
from tripcomms.trips.panels import ReadinessItem, panels, readiness, readiness_check
from tripcomms.types import utcnow

bp = Blueprint("trips", __name__, url_prefix="/trips")

SHOWS = {
    "upcoming": lambda q, now: q.where(Trip.ends_at > now, Trip.cancelled_at.is_(None)),
    "past": lambda q, now: q.where((Trip.ends_at <= now) | Trip.cancelled_at.is_not(None)),
    "all": lambda q, now: q,
}


@bp.route("/")
@login_required
def index():
    show = request.args.get("show", "upcoming")
    if show not in SHOWS:
        show = "upcoming"
    query = SHOWS[show](visible_trips(current_user), utcnow())
    query, sort = sorted_by(
        query,
        {"starts": Trip.starts_at, "title": Trip.title, "destination": Trip.destination},
        default="starts" if show == "upcoming" else "-starts",
    )
    return render_template(
        "trips/index.html",
        pagination=paged(query),
        sort=sort,
        show=show,
        can_manage=current_user.has_role(Role.OFFICE),
    )


@bp.route("/<int:trip_id>")
@login_required
def show(trip_id: int):
    trip = trip_or_404(current_user, trip_id)
    user = current_user._get_current_object()
    sees_numbers = user.has_role(Role.OFFICE)
    on_trip = user.id in trip.staff_ids
    pupils = queries.trip_pupils(trip)
    roster_page, roster_sort = page_of(
        queries.roster(trip),
        {"code": lambda e: e.code, "name": lambda e: e.contact.name.lower()},
        default="code",
    )
    return render_template(
        "trips/show.html",
        trip=trip,
        pupils=pupils,
        roster=roster_page,
        sort=roster_sort,
        sees_numbers=sees_numbers,
        show_restricted=on_trip or user.has_role(Role.OFFICE),
        restricted=[p for p in pupils if p.image_restricted],
        readiness=readiness(trip),
        panels=panels(trip, user),
        can_manage=user.has_role(Role.OFFICE),
        cancel_form=CancelTripForm(),
    )


def _form_values(form: TripForm) -> dict[str, Any]:
    leader = db.session.get(User, int(form.leader_id.data)) if form.leader_id.data else None
    staff = [db.session.get(User, int(i)) for i in form.staff_ids.data or []]
    return {
        "title": form.title.data,
        "destination": form.destination.data or "",
        "starts_at": local_to_utc(form.starts_at.data),
        "ends_at": local_to_utc(form.ends_at.data),
        "leader": leader,
        "staff": [u for u in staff if u is not None],
        "notes": form.notes.data or "",
    }


@bp.route("/new", methods=["GET", "POST"])
@role_required(Role.OFFICE)
def new():
    form = TripForm()
    if form.validate_on_submit():
        done = carry_out(
            lambda: ops.create_trip(current_user._get_current_object(), **_form_values(form)),
            form=form,
            success=lambda trip: f"Trip created: {trip.title}. Next, upload its roster.",
            redirect_to=lambda trip: url_for("trips.show", trip_id=trip.id),
        )
        if done is not None:
            return done
    return render_template("trips/form.html", form=form, trip=None)


@bp.route("/<int:trip_id>/edit", methods=["GET", "POST"])
@role_required(Role.OFFICE)
def edit(trip_id: int):
    trip = trip_or_404(current_user, trip_id)
    form = TripForm(obj=None if request.method == "POST" else trip)
    if request.method == "GET":
        form.starts_at.data = utc_to_local_naive(trip.starts_at)
        form.ends_at.data = utc_to_local_naive(trip.ends_at)
        form.leader_id.data = str(trip.leader_id)
        form.staff_ids.data = [str(u.id) for u in trip.staff]
    if form.validate_on_submit():
        done = carry_out(
            lambda: ops.update_trip(current_user._get_current_object(), trip, **_form_values(form)),
            form=form,
            success="Trip saved.",
            redirect_to=url_for("trips.show", trip_id=trip.id),
        )
        if done is not None:
            return done
    return render_template("trips/form.html", form=form, trip=trip)


@bp.route("/<int:trip_id>/cancel", methods=["POST"])
@role_required(Role.OFFICE)
def cancel(trip_id: int):
    trip = trip_or_404(current_user, trip_id)
    form = CancelTripForm()
    back = url_for("trips.show", trip_id=trip.id)
    if not form.validate_on_submit():
        flash("The trip was not cancelled: give a reason.", "error")
        return redirect(back, code=303)
    return carry_out(
        lambda: ops.cancel_trip(current_user._get_current_object(), trip, form.reason.data),
        refused="The trip was not cancelled",
        success="The trip is cancelled.",
        redirect_to=back,
    )


@bp.route("/<int:trip_id>/roster", methods=["GET", "POST"])
@role_required(Role.OFFICE)
def roster(trip_id: int):
    trip = trip_or_404(current_user, trip_id)
    form = RosterUploadForm()
    report = errors = None
    if form.validate_on_submit():
        data = form.roster.data.read()
        try:
            report = ops.import_roster(current_user._get_current_object(), trip, data)
            db.session.commit()
        except ImportRejected as err:
            db.session.rollback()
            errors = err.errors
            form.roster.errors = [*form.roster.errors, err.message[0].upper() + err.message[1:]]
        except DomainError as err:
            db.session.rollback()
            apply_domain_error(form, err, default_field="roster")
        except IntegrityError as err:
            # Another import (this file twice, or a parent new to both of two trips' rosters)
            # added the same parent at the same moment.
            report = None
            form.roster.errors = [*form.roster.errors, refuse_clash(err, "Not imported")]
    status = 422 if errors or form.errors else 200
    return render_template(
        "trips/roster.html", trip=trip, form=form, report=report, errors=errors
    ), status


# --- Contributions to other pages ------------------------------------------------------------


@readiness_check(order=10)
def _roster_ready(trip: Trip) -> ReadinessItem:
    count = queries.active_contact_count(trip)
    if count:
        return ReadinessItem("Roster imported", True, f"{count} parents and carers")
    return ReadinessItem("Roster imported", False, "no roster yet")


@home_section(Role.LEADER, template="trips/_home_leader.html")
def _leader_home(user: User) -> dict[str, Any]:
    query = (
        visible_trips(user)
        .where(Trip.ends_at > utcnow(), Trip.cancelled_at.is_(None))
        .order_by(Trip.starts_at)
        .limit(10)
    )
    if user.has_role(Role.OFFICE):
        return {"my_trips": None}  # the office section lists every trip
    return {"my_trips": list(db.session.scalars(query))}


@home_section(Role.OFFICE, template="trips/_home_office.html")
def _office_home(user: User) -> dict[str, Any]:
    now = utcnow()
    query = (
        select(Trip)
        .where(Trip.ends_at > now, Trip.cancelled_at.is_(None))
        .order_by(Trip.starts_at)
        .limit(8)
    )
    trips = list(db.session.scalars(query))
    upcoming = db.session.scalar(
        select(func.count())
        .select_from(Trip)
        .where(Trip.ends_at > now, Trip.cancelled_at.is_(None))
    )
    return {
        "trips": [(trip, readiness(trip)) for trip in trips],
        "upcoming_count": upcoming,
    }

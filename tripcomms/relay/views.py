"""Relay pages: the office's review queue, trip numbers (administrator), a trip's number."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, url_for
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from tripcomms.audit.operations import record
from tripcomms.auth.access import role_required
from tripcomms.auth.models import Role, User
from tripcomms.errors import DomainError
from tripcomms.extensions import db
from tripcomms.forms import Form, carry_out, refuse_clash
from tripcomms.listing import paged, sorted_by
from tripcomms.main import home_section
from tripcomms.relay import numbers
from tripcomms.relay.gateway import GatewayError, gateway_from_config
from tripcomms.relay.models import Direction, Kind, Message, NumberAllocation, ProxyNumber
from tripcomms.relay.outbox import start_in_process
from tripcomms.trips.access import trip_or_404
from tripcomms.trips.models import Trip
from tripcomms.trips.panels import ReadinessItem, readiness_check, trip_panel
from tripcomms.types import utcnow

bp = Blueprint("relay", __name__)


class NumberForm(Form):
    number = StringField("Twilio number", validators=[DataRequired(), Length(max=40)])


# --- Office review queue ----------------------------------------------------------------------


@bp.route("/relay/review")
@role_required(Role.OFFICE)
def review():
    query = select(Message).where(
        Message.direction == Direction.IN,
        Message.needs_review.is_(True),
        Message.reviewed_at.is_(None),
    )
    query, sort = sorted_by(query, {"received": Message.created_at}, default="-received")
    return render_template(
        "relay/review.html", pagination=paged(query), sort=sort, form=FlaskForm()
    )


@bp.route("/relay/review/<int:message_id>", methods=["POST"])
@role_required(Role.OFFICE)
def mark_reviewed(message_id: int):
    message = db.session.scalar(
        select(Message).where(Message.id == message_id, Message.needs_review.is_(True))
    )
    if message is None:
        abort(404)
    if not FlaskForm().validate_on_submit():
        abort(400)
    if message.reviewed_at is None:
        message.reviewed_at = utcnow()
        message.reviewed_by_id = current_user.id
        record(current_user._get_current_object(), "message.reviewed", message)
        db.session.commit()
    flash("Marked as dealt with.", "success")
    return redirect(url_for("relay.review"), code=303)


@home_section(Role.OFFICE, template="relay/_home_office.html")
def _office_home(user: User) -> dict[str, Any]:
    waiting = db.session.scalar(
        select(func.count())
        .select_from(Message)
        .where(
            Message.direction == Direction.IN,
            Message.needs_review.is_(True),
            Message.reviewed_at.is_(None),
        )
    )
    return {"waiting": waiting, "short_of_numbers": trips_short_of_numbers()}


@home_section(Role.HEAD, template="relay/_home_head.html")
def _head_home(user: User) -> dict[str, Any]:
    attempts = db.session.scalars(
        select(Message)
        .where(Message.kind == Kind.FROM_STAFF_UNAPPROVED)
        .order_by(Message.created_at.desc())
        .limit(10)
    )
    return {"attempts": list(attempts)}


def trips_short_of_numbers(days: int = 14) -> list[Trip]:
    """Upcoming trips with no number and none free for them: the pool is exhausted."""
    soon = utcnow() + current_app.config["RELAY_OPEN_BEFORE"]
    allocated = select(NumberAllocation.trip_id).where(NumberAllocation.released_at.is_(None))
    trips = db.session.scalars(
        select(Trip).where(
            Trip.cancelled_at.is_(None),
            Trip.ends_at > utcnow(),
            Trip.starts_at < soon + timedelta(days=days),
            Trip.id.not_in(allocated),
        )
    )
    return [trip for trip in trips if not numbers.free_numbers(trip)]


# --- A trip's number --------------------------------------------------------------------------


@readiness_check(order=30)
def _number_ready(trip: Trip) -> ReadinessItem:
    number = numbers.trip_number(trip)
    if number:
        return ReadinessItem("Trip number allocated", True, number)
    if not numbers.free_numbers(trip):
        return ReadinessItem("Trip number allocated", False, "no number is free: pool exhausted")
    return ReadinessItem("Trip number allocated", False, "not yet")


@trip_panel("relay/_trip_number.html", order=10)
def _number_panel(trip: Trip, user: User) -> dict[str, Any]:
    allocation = numbers.current_allocation(trip)
    window = numbers.relay_window(trip)
    return {
        "allocation": allocation,
        "window": window,
        "open_now": window.holds(utcnow()),
        "exhausted": allocation is None and not numbers.free_numbers(trip),
        "can_allocate": user.has_role(Role.OFFICE) and trip.cancelled_at is None,
        "form": FlaskForm(),
    }


@bp.route("/trips/<int:trip_id>/number", methods=["POST"])
@role_required(Role.OFFICE)
def allocate(trip_id: int):
    trip = trip_or_404(current_user, trip_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    return carry_out(
        lambda: numbers.allocate_number(current_user._get_current_object(), trip),
        refused="No number allocated",
        success=lambda proxy: f"Trip number {proxy.number} allocated.",
        redirect_to=url_for("trips.show", trip_id=trip.id),
    )


# --- Numbers (administrator) ------------------------------------------------------------------


@bp.route("/admin/numbers", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def number_admin():
    form = NumberForm()
    if form.validate_on_submit():
        done = carry_out(
            lambda: numbers.add_number(current_user._get_current_object(), form.number.data),
            form=form,
            field="number",
            success=lambda proxy: f"Added {proxy.number}. Run 'Point numbers at tripcomms' next.",
            redirect_to=url_for("relay.number_admin"),
        )
        if done is not None:
            return done
    rows = db.session.scalars(select(ProxyNumber).order_by(ProxyNumber.number)).all()
    current = {
        a.proxy_number_id: a
        for a in db.session.scalars(
            select(NumberAllocation)
            .where(NumberAllocation.released_at.is_(None))
            .join(Trip)
            .where(Trip.ends_at > utcnow() - current_app.config["RELAY_GRACE_AFTER"])
            .order_by(Trip.starts_at.desc())
        )
    }
    return render_template(
        "relay/numbers.html", numbers=rows, current=current, form=form, sync_form=FlaskForm()
    )


@bp.route("/admin/numbers/sync", methods=["POST"])
@role_required(Role.ADMIN)
def number_sync():
    if not FlaskForm().validate_on_submit():
        abort(400)
    try:
        with gateway_from_config(current_app.config) as gateway:
            lines = numbers.sync_numbers(
                current_user._get_current_object(), gateway, current_app.config["PUBLIC_BASE_URL"]
            )
        db.session.commit()
    except (GatewayError, DomainError) as err:
        db.session.rollback()
        flash(f"Could not read the numbers from Twilio: {err}.", "error")
    except IntegrityError as err:
        # Another sync (or "Add") registered one of the new numbers at the same moment.
        flash(refuse_clash(err), "error")
    else:
        flash(f"{len(lines)} numbers now send their texts to tripcomms.", "success")
    return redirect(url_for("relay.number_admin"), code=303)


def start_sender_on_first_request(app) -> None:
    """The in-process outbox sender starts with the first request, never in create_app."""

    @app.before_request
    def _start_sender():
        if app.config["SEND_IN_PROCESS"]:
            start_in_process(app)

"""Simulated handsets at ``/sim/phones``: play a parent, a leader's school phone or the head.

A demo and test tool, registered only with the simulator backend, for any signed-in user. Each
page shows one handset's texts as a phone shows them (the trip number as the sender of relayed
texts) and sends a text from it to a trip number through ``Simulator.send_from_handset``, which
posts a signed webhook to the app, as Twilio would. The handsets listed are the people in the
database: parents and carers on trips, school phones, and staff personal numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests
from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    jsonify,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import login_required
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import BooleanField, SelectField, TextAreaField

from tripcomms.errors import InvalidInput
from tripcomms.extensions import db
from tripcomms.forms import Form
from tripcomms.localtime import to_local
from tripcomms.mobile import display_number, mask_number, normalise_number
from tripcomms.simulator.records import HandsetText, SimulatorError
from tripcomms.types import utcnow

bp = Blueprint("handsets", __name__, url_prefix="/sim/phones")
MAX_TEXT = 5000  # a phone splits long texts; the app refuses over 1,600 itself


@dataclass(frozen=True)
class Handset:
    key: str  # "contact-12", "phone-3", "staff-4" or "number-447400123456"
    number: str
    name: str
    detail: str
    group: str


def _simulator():
    return current_app.extensions["simulator"]


# --- Who has a phone --------------------------------------------------------------------------


def _parents() -> list[Handset]:
    from tripcomms.trips.models import Contact, Trip, TripContact

    rows = db.session.execute(
        select(Contact, TripContact.code, Trip.title)
        .join(TripContact, TripContact.contact_id == Contact.id)
        .join(Trip, Trip.id == TripContact.trip_id)
        .where(TripContact.active.is_(True), Trip.cancelled_at.is_(None), Trip.ends_at > _recent())
        .order_by(Trip.starts_at, TripContact.code)
    ).all()
    seen: dict[int, list[str]] = {}
    contacts: dict[int, Any] = {}
    for contact, code, title in rows:
        contacts.setdefault(contact.id, contact)
        seen.setdefault(contact.id, []).append(f"#{code} on {title}")
    return [
        Handset(f"contact-{cid}", c.mobile, c.name, "; ".join(seen[cid]), "Parents and carers")
        for cid, c in contacts.items()
    ]


def _recent() -> datetime:
    """Trips that ended more than two days ago no longer fill the list."""
    return utcnow() - timedelta(days=2)


def _school_phones() -> list[Handset]:
    from tripcomms.phones.models import Loan, Phone, PhoneStatus

    phones = db.session.scalars(
        select(Phone).where(Phone.status != PhoneStatus.RETIRED).order_by(Phone.label)
    ).all()
    loans = {
        loan.phone_id: loan
        for loan in db.session.scalars(select(Loan).where(Loan.returned_at.is_(None)))
    }
    found = []
    for phone in phones:
        loan = loans.get(phone.id)
        detail = f"with {loan.holder.name} for {loan.trip.title}" if loan else str(phone.status)
        found.append(
            Handset(f"phone-{phone.id}", phone.number, phone.label, detail, "School phones")
        )
    return found


def _staff_phones() -> list[Handset]:
    from tripcomms.auth.models import StaffNumber, User

    rows = db.session.execute(
        select(StaffNumber, User)
        .join(User, User.id == StaffNumber.user_id)
        .where(User.active.is_(True))
        .order_by(User.name)
    ).all()
    return [
        Handset(
            f"staff-{number.id}",
            number.number,
            f"{user.name}'s own phone",
            ", ".join(sorted(role.label for role in user.roles)),
            "Staff personal phones",
        )
        for number, user in rows
    ]


def handsets() -> list[Handset]:
    return [*_parents(), *_school_phones(), *_staff_phones()]


def _handset(key: str) -> Handset:
    """The handset a key names; 404 when there is none."""
    kind, _, value = key.partition("-")
    if kind == "number":
        try:
            number = normalise_number("+" + value, mobile=False)
        except InvalidInput:
            abort(404)
        known = next((h for h in handsets() if h.number == number), None)
        return known or Handset(key, number, "Another phone", "not on any list", "Other")
    if not value.isdigit():
        abort(404)
    found = next((h for h in handsets() if h.key == key), None)
    if found is None:
        abort(404)
    return found


# --- Trip numbers on the simulated account ----------------------------------------------------


def trip_numbers() -> dict[str, str]:
    """The simulated account's numbers, each with the trip it serves now: number -> label."""
    from tripcomms.relay.numbers import trip_for_number

    now = utcnow()
    labels = {}
    for sim_number in _simulator().numbers():
        number = sim_number.phone_number
        trip = trip_for_number(number, now)
        serves = trip.title if trip else "no trip now"
        labels[number] = f"{display_number(number)} (trip number: {serves})"
    return labels


def _default_to(handset: Handset, numbers: dict[str, str]) -> str | None:
    """The trip number this handset most likely texts: one serving a trip it belongs to."""
    from tripcomms.relay.numbers import trip_for_number

    now = utcnow()
    for number in numbers:
        trip = trip_for_number(number, now)
        if trip is not None and _belongs(handset, trip):
            return number
    return next(iter(numbers), None)


def _belongs(handset: Handset, trip) -> bool:
    kind, _, value = handset.key.partition("-")
    if kind == "contact":
        return any(tc.contact_id == int(value) and tc.active for tc in trip.trip_contacts)
    if kind == "phone":
        from tripcomms.phones.models import Loan

        return (
            db.session.scalar(
                select(Loan.id).where(
                    Loan.phone_id == int(value), Loan.trip_id == trip.id, Loan.returned_at.is_(None)
                )
            )
            is not None
        )
    if kind == "staff":
        from tripcomms.auth.models import StaffNumber

        number = db.session.get(StaffNumber, int(value))
        return number is not None and number.user_id in trip.staff_ids
    return False


# --- Pages ------------------------------------------------------------------------------------


class HandsetForm(Form):
    to = SelectField("To")
    body = TextAreaField("Message")
    photo = BooleanField("Attach a photo (tripcomms never fetches or passes it on)")


def _text_json(text: HandsetText, numbers: dict[str, str], now: datetime) -> dict[str, Any]:
    other = text.from_ if text.direction == "received" else text.to
    local = to_local(text.at)
    same_day = local.date() == to_local(now).date()
    return {
        "sid": text.sid,
        "at": text.at.isoformat().replace("+00:00", "Z"),
        "time": local.strftime("%H:%M") if same_day else local.strftime("%d %b %H:%M"),
        "direction": text.direction,
        "other": display_number(other),
        "other_label": numbers.get(other, display_number(other)),
        "body": text.body,
        "status": "Delivered" if text.direction == "received" else "Sent",
        "media": len(text.media_types),
    }


@bp.route("")
@login_required
def index():
    number = (request.args.get("number") or "").strip()
    error = None
    if number:
        try:
            e164 = normalise_number(number, mobile=False)
        except InvalidInput as err:
            error = err.message
        else:
            return redirect(url_for("handsets.phone", key="number-" + e164.lstrip("+")), 303)
    groups: dict[str, list[Handset]] = {}
    for handset in handsets():
        groups.setdefault(handset.group, []).append(handset)
    return render_template(
        "simulator/phones.html",
        groups=groups,
        numbers=trip_numbers(),
        error=error,
        number=number,
    ), (422 if error else 200)


@bp.route("/<key>", methods=["GET", "POST"])
@login_required
def phone(key: str):
    """One handset: its texts, a box to text a trip number from it (POST sends), and a switch
    to turn it off."""
    handset = _handset(key)
    numbers = trip_numbers()
    form = HandsetForm()
    form.to.choices = list(numbers.items())
    status = 200
    if form.validate_on_submit():
        body = form.body.data or ""
        if not body.strip() and not form.photo.data:
            form.body.errors = [*form.body.errors, "write a message first"]
            status = 422
        elif len(body) > MAX_TEXT:
            form.body.errors = [
                *form.body.errors,
                f"a phone will not send {len(body):,} characters",
            ]
            status = 422
        else:
            # Nothing of this request may hold the database while the app handles the webhook.
            db.session.rollback()
            media = ("image/jpeg",) if form.photo.data else ()
            try:
                answer = _simulator().send_from_handset(handset.number, form.to.data, body, media)
            except SimulatorError as err:
                form.to.errors = [*form.to.errors, str(err)]
                status = 422
            except requests.RequestException:
                flash("The app did not answer the simulated webhook; is it serving?", "error")
                status = 502
            else:
                if answer.status == 200:
                    flash("Sent.", "success")
                else:
                    flash(f"The app answered the webhook with HTTP {answer.status}.", "error")
                return redirect(url_for("handsets.phone", key=handset.key), code=303)
    elif request.method == "GET":
        form.to.data = _default_to(handset, numbers)
    now = utcnow()
    texts = [_text_json(t, numbers, now) for t in _simulator().texts_for(handset.number)]
    return render_template(
        "simulator/phone.html",
        handset=handset,
        masked=mask_number(handset.number),
        texts=texts,
        form=form,
        has_numbers=bool(numbers),
        switched_off=_simulator().undeliverable_code(handset.number) is not None,
        poll_ms=int(float(current_app.config.get("INBOX_POLL_SECONDS", 3)) * 1000),
    ), status


@bp.route("/<key>/power", methods=["POST"])
@login_required
def power(key: str):
    """Switch a handset off (texts to it end undelivered, 30003 unreachable) or on again."""
    handset = _handset(key)
    if not FlaskForm().validate_on_submit():
        abort(400)
    sim = _simulator()
    if request.form.get("state") == "off":
        sim.make_undeliverable(handset.number, 30003)
        flash(f"{handset.name}'s phone is off: texts to it will not be delivered.", "success")
    else:
        sim.make_deliverable(handset.number)
        flash(f"{handset.name}'s phone is on again.", "success")
    return redirect(url_for("handsets.phone", key=handset.key), code=303)


@bp.route("/<key>/texts.json")
@login_required
def texts(key: str):
    """{"texts": [{sid, at, time, direction ("received" or "sent"), other, other_label, body,
    status, media}]}, oldest first: what the handset shows."""
    handset = _handset(key)
    numbers = trip_numbers()
    now = utcnow()
    return jsonify(
        texts=[_text_json(t, numbers, now) for t in _simulator().texts_for(handset.number)]
    )

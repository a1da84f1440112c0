"""The trip leaders' web inbox, broadcasts with live progress, and the office's templates.

Leaders open the inbox of the trips they lead or accompany, the Headteacher of any trip;
anyone else, or another trip, gets 404. Pages work without JavaScript; with it they poll the
JSON endpoints every few seconds (static/js/), so new texts and delivery receipts appear
without a reload. Every message goes through the relay's operations: the same content rules
and opt-outs as texting from a trip phone.
"""

from __future__ import annotations

from typing import Any

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
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from tripcomms.auth.access import role_required
from tripcomms.auth.models import Role, User
from tripcomms.errors import DomainError
from tripcomms.extensions import db
from tripcomms.forms import apply_domain_error, carry_out
from tripcomms.main import home_section
from tripcomms.relay import inbox
from tripcomms.relay import operations as ops
from tripcomms.relay.forms import (
    BroadcastForm,
    ComposeForm,
    ConfirmBroadcastForm,
    TemplateForm,
    new_form_key,
)
from tripcomms.relay.inbox import Entry, Person, Progress, Thread, iso, short_time
from tripcomms.relay.models import Broadcast, Message, MessageTemplate
from tripcomms.relay.numbers import relay_window, trip_number
from tripcomms.relay.outbox import wake
from tripcomms.trips.access import trip_or_404
from tripcomms.trips.models import Trip
from tripcomms.trips.panels import trip_panel
from tripcomms.types import utcnow
from tripcomms.web import db_int

bp = Blueprint("inbox", __name__)
bp.add_app_template_filter(iso, "iso")
bp.add_app_template_filter(short_time, "short_time")
bp.add_app_template_filter(lambda state: inbox.STATE_TEXT.get(state, state), "state_text")

INBOX_ROLES = (Role.LEADER, Role.HEAD)
REDACTED = "(text removed under the school's retention policy)"


def _user() -> User:
    return current_user._get_current_object()


def _wake(_done: object = None) -> None:
    """Start the outbox on the texts an operation queued (after the commit)."""
    wake(current_app._get_current_object())


def _trip(trip_id: int) -> Trip:
    """The trip, if the user may see it and use its inbox; 404 otherwise."""
    trip = trip_or_404(current_user, trip_id)
    if not inbox.may_use_inbox(_user(), trip):
        abort(404)
    return trip


def _person(trip: Trip, code: int) -> Person:
    person = inbox.person_by_code(trip, code)
    if person is None:
        abort(404)
    return person


def _poll_ms() -> int:
    return int(float(current_app.config.get("INBOX_POLL_SECONDS", 3)) * 1000)


def _template_choice() -> str | None:
    """The body of the template picked with ?template=ID (the no-JavaScript way)."""
    template_id = request.args.get("template", type=db_int)
    if template_id is None:
        return None
    template = db.session.get(MessageTemplate, template_id)
    return template.body if template is not None and template.active else None


def _send_closed_reason(trip: Trip, person: Person | None = None) -> str | None:
    """Why nothing can be sent now, or None."""
    if trip.cancelled_at is not None:
        return "This trip is cancelled, so its number sends nothing."
    if trip_number(trip) is None:
        return "This trip has no trip number yet, so nothing can be sent. Ask the office."
    window = relay_window(trip)
    if not window.holds(utcnow()):
        return (
            f"The trip number works from {inbox.short_time(window.opens_at)} until "
            f"{inbox.short_time(window.closes_at)}; nothing can be sent outside that time."
        )
    if person is not None:
        if not person.active:
            return f"{person.name} is no longer on this trip's roster."
        if person.opted_out:
            return (
                f"{person.name} has opted out of texts from this trip number (STOP). "
                "They can text START to the trip number to opt back in."
            )
    return None


# --- The inbox --------------------------------------------------------------------------------


def _thread_json(trip: Trip, thread: Thread, now) -> dict[str, Any]:
    person, last = thread.person, thread.last
    return {
        "code": person.code,
        "name": person.name,
        "pupils": person.pupils_text,
        "url": url_for("inbox.thread", trip_id=trip.id, code=person.code),
        "last_id": last.id,
        "last_at": iso(last.created_at),
        "last_time": short_time(last.created_at, now),
        "last_from": "parent" if last.direction == "in" else "staff",
        "last_text": _body(last)[:140],
        "unread": thread.unread,
        "waiting_since": iso(thread.waiting_since),
        "waiting_time": short_time(thread.waiting_since, now) if thread.waiting_since else None,
        "overdue": thread.overdue,
        "opted_out": person.opted_out,
    }


def _body(message: Message) -> str:
    return REDACTED if message.body_redacted_at else message.body


@bp.route("/trips/<int:trip_id>/inbox")
@role_required(*INBOX_ROLES)
def index(trip_id: int):
    trip = _trip(trip_id)
    everyone = [p for p in inbox.people(trip).values() if p.active and not p.no_contact]
    return render_template(
        "inbox/index.html",
        trip=trip,
        threads=inbox.threads(trip, _user()),
        everyone=everyone,
        broadcasts=inbox.recent_broadcasts(trip),
        number=trip_number(trip),
        closed=_send_closed_reason(trip),
        poll_ms=_poll_ms(),
        now=utcnow(),
    )


@bp.route("/trips/<int:trip_id>/inbox.json")
@role_required(*INBOX_ROLES)
def index_json(trip_id: int):
    """{"threads": [{code, name, pupils, url, last_id, last_at, last_time, last_from,
    last_text, unread, waiting_since, waiting_time, overdue, opted_out}], "unread": n,
    "waiting": n}, the most recent thread first."""
    trip = _trip(trip_id)
    now = utcnow()
    threads = inbox.threads(trip, _user())
    return jsonify(
        threads=[_thread_json(trip, t, now) for t in threads],
        unread=sum(t.unread for t in threads),
        waiting=sum(1 for t in threads if t.waiting_since),
    )


@bp.route("/trips/<int:trip_id>/inbox/open")
@role_required(*INBOX_ROLES)
def open_thread(trip_id: int):
    """The "Text a parent" picker: go to that parent's thread."""
    trip = _trip(trip_id)
    code = request.args.get("code", type=db_int)
    if code is None:
        return redirect(url_for("inbox.index", trip_id=trip.id), code=303)
    person = _person(trip, code)
    return redirect(url_for("inbox.thread", trip_id=trip.id, code=person.code), code=303)


# --- A thread ---------------------------------------------------------------------------------


def _entry_json(trip: Trip, entry: Entry, now) -> dict[str, Any]:
    m = entry.message
    return {
        "id": m.id,
        "at": iso(m.created_at),
        "time": short_time(m.created_at, now),
        "side": entry.side,
        "who": entry.who,
        "how": entry.how,
        "body": _body(m),
        "state": entry.state,
        "status": entry.status_text,
        "reason": entry.reason,
        "note": entry.note,
        "retry_url": url_for("inbox.retry", trip_id=trip.id, message_id=m.id)
        if entry.retry
        else None,
    }


def _mark_read(trip: Trip, person: Person, entries: list[Entry]) -> None:
    if not entries:
        return
    try:
        if ops.mark_thread_read(_user(), trip, person.contact, entries[-1].message.id):
            db.session.commit()
    except IntegrityError:
        # The same person's other tab marked it at the same moment; either mark will do.
        db.session.rollback()


@bp.route("/trips/<int:trip_id>/inbox/<int:code>", methods=["GET", "POST"])
@role_required(*INBOX_ROLES)
def thread(trip_id: int, code: int):
    """The conversation with one parent, and the box to reply (POST sends)."""
    trip = _trip(trip_id)
    person = _person(trip, code)
    form = ComposeForm()
    status = 200
    if form.validate_on_submit():
        here = url_for("inbox.thread", trip_id=trip.id, code=code)

        def sent(outcome: tuple[Message, bool]) -> None:
            message, new = outcome
            _wake()
            if new:
                flash(f"Sent to #{code} {person.name}.", "success")
            else:
                flash(f"That was sent already (message {message.id}); not sent twice.", "info")

        # A blocked attempt is committed all the same: it is evidence (policy 61, 70). The
        # same form sent twice at the same moment answers as a second click: "sent already".
        done = carry_out(
            lambda: ops.send_from_web(
                _user(), trip, code, form.body.data or "", request_key=form.request_key.data
            ),
            form=form,
            field="body",
            then=sent,
            success=None,
            redirect_to=here,
            keyed=True,
        )
        if done is not None:
            return done
        status = 422
    elif request.method == "GET":
        form.body.data = _template_choice() or ""
    form.request_key.data = new_form_key()
    entries = inbox.conversation(trip, person)
    _mark_read(trip, person, entries)
    return render_template(
        "inbox/thread.html",
        trip=trip,
        person=person,
        entries=entries,
        form=form,
        templates=inbox.active_templates(),
        closed=_send_closed_reason(trip, person),
        poll_ms=_poll_ms(),
        max_body=ops.MAX_BODY,
        now=utcnow(),
    ), status


@bp.route("/trips/<int:trip_id>/inbox/<int:code>.json")
@role_required(*INBOX_ROLES)
def thread_json(trip_id: int, code: int):
    """{"code", "name", "pupils", "can_send", "closed", "messages": [{id, at, time, side
    ("parent" or "staff"), who, how, body, state ("received", "queued", "sent", "delivered",
    "failed", "blocked"), status, reason, note, retry_url}]}, oldest first."""
    trip = _trip(trip_id)
    person = _person(trip, code)
    now = utcnow()
    closed = _send_closed_reason(trip, person)
    return jsonify(
        code=person.code,
        name=person.name,
        pupils=person.pupils_text,
        can_send=closed is None,
        closed=closed,
        messages=[_entry_json(trip, e, now) for e in inbox.conversation(trip, person)],
    )


@bp.route("/trips/<int:trip_id>/inbox/<int:code>/read", methods=["POST"])
@role_required(*INBOX_ROLES)
def mark_read(trip_id: int, code: int):
    """The thread page's script: "I have shown up to message ``up_to``". Answers {"ok": true,
    "moved": bool}. CSRF comes in the X-CSRFToken header."""
    trip = _trip(trip_id)
    person = _person(trip, code)
    up_to = request.form.get("up_to", type=db_int)
    if up_to is None:
        abort(400)
    moved = False
    try:
        moved = ops.mark_thread_read(_user(), trip, person.contact, up_to)
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
    return jsonify(ok=True, moved=moved)


@bp.route("/trips/<int:trip_id>/messages/<int:message_id>/retry", methods=["POST"])
@role_required(*INBOX_ROLES)
def retry(trip_id: int, message_id: int):
    """Send a failed text to a parent again; back to its broadcast, or its thread."""
    trip = _trip(trip_id)
    message = db.session.scalar(
        select(Message).where(Message.id == message_id, Message.trip_id == trip.id)
    )
    if message is None or message.contact_id is None:
        abort(404)
    person = inbox.people(trip).get(message.contact_id)
    if person is None or person.no_contact:
        abort(404)
    if not FlaskForm().validate_on_submit():
        abort(400)
    if message.broadcast_id:
        target = url_for(
            "inbox.broadcast_progress", trip_id=trip.id, broadcast_id=message.broadcast_id
        )
    else:
        target = url_for("inbox.thread", trip_id=trip.id, code=person.code)
    # Two clicks at the same moment: the second is refused as "already sent again".
    return carry_out(
        lambda: ops.retry_message(_user(), trip, message),
        refused="Not sent again",
        then=_wake,
        success=f"Sending again to #{person.code} {person.name}.",
        redirect_to=target,
        keyed=True,
    )


# --- Broadcasts -------------------------------------------------------------------------------


@bp.route("/trips/<int:trip_id>/broadcast", methods=["GET", "POST"])
@role_required(*INBOX_ROLES)
def broadcast(trip_id: int):
    """Write a text to every parent; POST checks it and shows who will (not) receive it."""
    trip = _trip(trip_id)
    form = BroadcastForm()
    status = 200
    if form.validate_on_submit():
        if request.form.get("action") != "edit":
            try:
                preview = ops.preview_broadcast(_user(), trip, form.body.data or "")
            except ops.ContentBlocked as err:
                db.session.commit()  # the blocked attempt is kept as evidence
                apply_domain_error(form, err, "body")
                status = 422
            except DomainError as err:
                db.session.rollback()
                apply_domain_error(form, err, "body")
                status = 422
            else:
                confirm = ConfirmBroadcastForm(
                    formdata=None, body=preview.body, request_key=new_form_key()
                )
                return render_template(
                    "inbox/broadcast_confirm.html", trip=trip, preview=preview, form=confirm
                )
    elif request.method == "GET":
        form.body.data = _template_choice() or ""
    return render_template(
        "inbox/broadcast.html",
        trip=trip,
        form=form,
        templates=inbox.active_templates(),
        closed=_send_closed_reason(trip),
        max_body=ops.MAX_BODY,
    ), status


@bp.route("/trips/<int:trip_id>/broadcast/send", methods=["POST"])
@role_required(*INBOX_ROLES)
def broadcast_send(trip_id: int):
    """The confirmation: send once per confirmation form, then show the progress."""
    trip = _trip(trip_id)
    confirm = ConfirmBroadcastForm()
    if not confirm.validate_on_submit():
        abort(400)
    key = confirm.request_key.data or ""
    form = BroadcastForm(formdata=None, body=confirm.body.data)
    # The same confirmation twice at the same moment: the second shows the first's progress.
    done = carry_out(
        lambda: ops.broadcast_from_web(_user(), trip, confirm.body.data or "", request_key=key),
        form=form,
        field="body",
        then=_wake,
        success=lambda outcome: outcome.receipt() + ".",
        redirect_to=lambda outcome: url_for(
            "inbox.broadcast_progress", trip_id=trip.id, broadcast_id=outcome.broadcast.id
        ),
        keyed=True,
    )
    if done is not None:
        return done
    return render_template(
        "inbox/broadcast.html",
        trip=trip,
        form=form,
        templates=inbox.active_templates(),
        closed=_send_closed_reason(trip),
        max_body=ops.MAX_BODY,
    ), 422


def _broadcast(trip: Trip, broadcast_id: int) -> Broadcast:
    found = db.session.scalar(
        select(Broadcast).where(Broadcast.id == broadcast_id, Broadcast.trip_id == trip.id)
    )
    if found is None:
        abort(404)
    return found


def _progress_json(trip: Trip, progress: Progress) -> dict[str, Any]:
    b = progress.broadcast
    return {
        "id": b.id,
        "total": progress.total,
        "done": progress.done,
        "finished": progress.finished,
        "counts": progress.counts,
        "skipped": {"opted_out": b.skipped_opted_out, "no_contact": b.skipped_no_contact},
        "recipients": [
            {
                "message_id": row.message.id,
                "code": row.person.code if row.person else None,
                "name": row.person.name if row.person else "",
                "pupils": row.person.pupils_text if row.person else "",
                "state": row.state,
                "status": inbox.STATE_TEXT[row.state],
                "reason": row.reason,
                "attempts": row.attempts,
                "retry_url": url_for("inbox.retry", trip_id=trip.id, message_id=row.message.id)
                if row.retry
                else None,
            }
            for row in progress.rows
        ],
    }


@bp.route("/trips/<int:trip_id>/broadcasts/<int:broadcast_id>")
@role_required(*INBOX_ROLES)
def broadcast_progress(trip_id: int, broadcast_id: int):
    trip = _trip(trip_id)
    item = _broadcast(trip, broadcast_id)
    return render_template(
        "inbox/broadcast_progress.html",
        trip=trip,
        broadcast=item,
        progress=inbox.broadcast_progress(trip, item),
        poll_ms=_poll_ms(),
    )


@bp.route("/trips/<int:trip_id>/broadcasts/<int:broadcast_id>.json")
@role_required(*INBOX_ROLES)
def broadcast_json(trip_id: int, broadcast_id: int):
    """{"id", "total", "done", "finished", "counts": {queued, sent, delivered, failed},
    "skipped": {opted_out, no_contact}, "recipients": [{message_id, code, name, pupils,
    state, status, reason, attempts, retry_url}]} by code."""
    trip = _trip(trip_id)
    item = _broadcast(trip, broadcast_id)
    return jsonify(_progress_json(trip, inbox.broadcast_progress(trip, item)))


# --- Message templates (the office) -----------------------------------------------------------


@bp.route("/message-templates", methods=["GET", "POST"])
@role_required(Role.OFFICE)
def templates():
    form = TemplateForm()
    status = 200
    if form.validate_on_submit():
        done = carry_out(
            lambda: ops.create_template(_user(), name=form.name.data, body=form.body.data),
            form=form,
            field="body",
            success=lambda template: f"Template {template.name!r} added.",
            redirect_to=url_for("inbox.templates"),
        )
        if done is not None:
            return done
        status = 422
    rows = db.session.scalars(
        select(MessageTemplate).order_by(MessageTemplate.active.desc(), MessageTemplate.name)
    ).all()
    return render_template(
        "inbox/templates.html", form=form, templates=rows, retire_form=FlaskForm()
    ), status


def _template(template_id: int) -> MessageTemplate:
    template = db.session.get(MessageTemplate, template_id)
    if template is None:
        abort(404)
    return template


@bp.route("/message-templates/<int:template_id>", methods=["GET", "POST"])
@role_required(Role.OFFICE)
def edit_template(template_id: int):
    template = _template(template_id)
    form = TemplateForm(obj=None if request.method == "POST" else template)
    status = 200
    if form.validate_on_submit():
        done = carry_out(
            lambda: ops.update_template(
                _user(), template, name=form.name.data, body=form.body.data
            ),
            form=form,
            field="body",
            success=lambda _: f"Template {template.name!r} saved.",
            redirect_to=url_for("inbox.templates"),
        )
        if done is not None:
            return done
        status = 422
    return render_template("inbox/template_form.html", form=form, template=template), status


@bp.route("/message-templates/<int:template_id>/retire", methods=["POST"])
@role_required(Role.OFFICE)
def retire_template(template_id: int):
    template = _template(template_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    return carry_out(
        lambda: ops.retire_template(_user(), template),
        refused="Not retired",
        success=f"Template {template.name!r} retired: no longer offered.",
        redirect_to=url_for("inbox.templates"),
    )


# --- Links from the trip page and the home page ----------------------------------------------


def _summary(trip: Trip, user: User) -> dict[str, Any]:
    threads = inbox.threads(trip, user)
    waiting = [t.waiting_since for t in threads if t.waiting_since]
    return {
        "unread": sum(t.unread for t in threads),
        "waiting": len(waiting),
        "waiting_since": min(waiting) if waiting else None,
        "overdue": sum(1 for t in threads if t.overdue),
    }


@trip_panel("inbox/_trip_panel.html", order=15)
def _inbox_panel(trip: Trip, user: User) -> dict[str, Any] | None:
    if not inbox.may_use_inbox(user, trip):
        return None
    return {**_summary(trip, user), "closed": _send_closed_reason(trip)}


@home_section(*INBOX_ROLES, template="inbox/_home.html")
def _inbox_home(user: User) -> dict[str, Any]:
    return {"texting": [(trip, _summary(trip, user)) for trip in inbox.texting_trips(user)]}

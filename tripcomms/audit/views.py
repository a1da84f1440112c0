"""The communication record: log search and export, a message's record, trip reports, and
the audit trail with its chain check.

Every page here reads; none changes anything. Auditors read and change nothing anywhere: the
guard at the bottom refuses any request from them that could change state.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    render_template,
    request,
    stream_with_context,
)
from flask_login import current_user
from sqlalchemy import false, or_, select
from sqlalchemy.orm import selectinload

from tripcomms.audit import search
from tripcomms.audit.access import (
    CONCERN_REPORTERS,
    LOG_ROLES,
    has_full_access,
    log_trip_or_404,
    log_trips,
    message_or_404,
    visible_messages,
)
from tripcomms.audit.export import csv_chunks, export_query, export_rows
from tripcomms.audit.forms import AuditSearchForm, LogSearchForm, choices, id_or_none
from tripcomms.audit.models import AuditEvent
from tripcomms.audit.operations import record, verify_chain
from tripcomms.audit.parties import parties
from tripcomms.audit.report import (
    APPROVALS_SLOT,
    count_messages,
    hour_chart,
    report_period,
    report_sections,
    trip_messages,
)
from tripcomms.auth.access import role_required
from tripcomms.auth.models import Role, User
from tripcomms.extensions import db
from tripcomms.listing import paged
from tripcomms.relay.models import DeliveryEvent, Message
from tripcomms.safeguarding.models import Concern, ResponseEscalation
from tripcomms.safeguarding.queries import (
    concerns_about,
    is_handler,
    is_held,
    notice_of,
    trip_concerns,
)
from tripcomms.safeguarding.responses import describe_wait, reply_times, target, waiting_texts
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow
from tripcomms.web import db_int

bp = Blueprint("audit", __name__)

MAX_PAGE = 10_000
AUDIT_ROLES = (Role.HEAD, Role.AUDITOR)


def _user() -> User:
    return current_user._get_current_object()


def _page() -> int:
    return min(max(request.args.get("page", 1, type=db_int) or 1, 1), MAX_PAGE)


# --- The log ---------------------------------------------------------------------------------


def _search_form(user: User) -> tuple[LogSearchForm, search.LogFilter | None]:
    """The search form filled from the address; the filter, or None when it has errors."""
    form = LogSearchForm(formdata=request.args)
    trips = db.session.scalars(log_trips(user).order_by(Trip.starts_at.desc())).all()
    staff = db.session.scalars(select(User).order_by(User.name)).all()
    form.set_choices(trips, staff)
    if request.args and not form.validate():
        return form, None
    flt = search.LogFilter(
        trip_id=id_or_none(form.trip.data),
        date_from=form.date_from.data,
        date_to=form.date_to.data,
        contact_id=id_or_none(form.contact.data),
        pupil_id=id_or_none(form.pupil.data),
        person=form.person.data or "",
        staff_id=id_or_none(form.staff.data),
        direction=form.direction.data or None,
        status=form.status.data or None,
        text=form.text.data or "",
        newest_first=form.order.data != "oldest",
    )
    return form, flt


def _row(message: Message, full: bool) -> dict[str, Any]:
    sender, recipient = parties(
        direction=message.direction,
        kind=message.kind,
        from_number=message.from_number,
        to_number=message.to_number,
        contact_name=message.contact.name if message.contact else None,
        staff_name=message.staff.name if message.staff else None,
        trip_title=message.trip.title if message.trip else None,
    )
    return {
        "message": message,
        "from": sender.shown(full),
        "to": recipient.shown(full),
    }


def _visible_rows(user: User, messages: list[Message], full: bool) -> list[dict[str, Any]]:
    """``messages`` that ``user`` may read, as rows of the record."""
    if not messages:
        return []
    ids = [m.id for m in messages]
    seen = set(
        db.session.scalars(
            visible_messages(user).with_only_columns(Message.id).where(Message.id.in_(ids))
        )
    )
    return [_row(m, full) for m in messages if m.id in seen]


@bp.route("/log")
@role_required(*LOG_ROLES)
def log():
    user = _user()
    form, flt = _search_form(user)
    pagination, rows = None, []
    if flt is not None:
        pagination = search.search_page(user, flt, _page())
        rows = [_row(m, has_full_access(user)) for m in pagination.items]
    status = 422 if form.errors else 200
    return render_template(
        "audit/log.html",
        form=form,
        pagination=pagination,
        rows=rows,
        searched=bool(request.args),
        export_args={k: v for k, v in request.args.items() if k != "page"},
    ), status


@bp.route("/log/export.csv")
@role_required(*LOG_ROLES)
def export():
    """The search as CSV, streamed. Numbers are masked unless the reader sees them in full."""
    user = _user()
    form, flt = _search_form(user)
    if flt is None:
        return render_template(
            "audit/log.html",
            form=form,
            pagination=None,
            rows=[],
            searched=True,
            export_args={},
        ), 422
    full = has_full_access(user)
    # Who took a copy of the record is itself part of the record.
    record(user, "log.exported", **flt.as_audit_data(), full_numbers=full)
    db.session.commit()
    rows = export_rows(export_query(search.search_conditions(user, flt)), full_numbers=full)
    stamp = utcnow().strftime("%Y%m%d-%H%M")
    return Response(
        stream_with_context(csv_chunks(rows)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="tripcomms-log-{stamp}.csv"'},
    )


@bp.route("/log/messages/<int:message_id>")
@role_required(*LOG_ROLES, Role.OFFICE)
def message(message_id: int):
    """A message's full record: what, who, when, what Twilio said, what it caused, and the
    text it was sent again as (or the failed text it sends again)."""
    user = _user()
    message = message_or_404(user, message_id)
    full = has_full_access(user)
    events = db.session.scalars(
        select(DeliveryEvent)
        .where(
            or_(
                DeliveryEvent.message_id == message.id,
                DeliveryEvent.twilio_sid == message.twilio_sid if message.twilio_sid else false(),
            )
        )
        .order_by(DeliveryEvent.received_at, DeliveryEvent.id)
    ).all()
    caused = db.session.scalars(
        visible_messages(user)
        .where(Message.caused_by_id == message.id)
        .options(selectinload(Message.staff), selectinload(Message.contact))
        .order_by(Message.created_at, Message.id)
    ).all()
    cause = None
    if message.caused_by_id is not None:
        cause = db.session.scalar(visible_messages(user).where(Message.id == message.caused_by_id))
    # A failed text sent again from the inbox, and the text that sent it again.
    sent_again = db.session.scalar(visible_messages(user).where(Message.retry_of_id == message.id))
    resent = None
    if message.retry_of_id is not None:
        resent = db.session.scalar(visible_messages(user).where(Message.id == message.retry_of_id))
    concerns = concerns_about(message)
    if not is_handler(user):
        concerns = [c for c in concerns if c.raised_by_id == user.id]
    # The texts that told the safeguarding lead and the Headteacher, as far as the reader may
    # see them; and, for such a text, what it was about.
    notices = {c.id: _visible_rows(user, c.notices, full) for c in concerns}
    about = notice_of(message)
    late = None
    if isinstance(about, ResponseEscalation):
        late = next(iter(_visible_rows(user, [about.message], full)), None)
    return render_template(
        "audit/message.html",
        m=message,
        row=_row(message, full),
        full=full,
        events=events,
        caused=[_row(c, full) for c in caused],
        cause=_row(cause, full) if cause else None,
        sent_again=_row(sent_again, full) if sent_again else None,
        resent=_row(resent, full) if resent else None,
        concerns=concerns,
        notices=notices,
        notice_concern=about if isinstance(about, Concern) else None,
        notice_late=late,
        # That a concern holds it says a concern exists: only to those who may see that.
        held=is_held(message) and (full or bool(concerns)),
        can_report=user.has_role(*CONCERN_REPORTERS),
        handler=is_handler(user),
    )


# --- Trip reports ----------------------------------------------------------------------------


@bp.route("/log/trips/<int:trip_id>/report")
@role_required(*LOG_ROLES)
def trip_report(trip_id: int):
    """A printable report of one trip's communications."""
    from tripcomms.phones.queries import trip_phone_summary

    user = _user()
    trip = log_trip_or_404(user, trip_id)
    full = has_full_access(user)
    messages = trip_messages(trip, user)
    start, end = report_period(trip)
    if messages:
        start = min(start, messages[0].created_at)
        end = max(min(end, max(messages[-1].created_at, trip.ends_at)), trip.ends_at)
    else:
        end = trip.ends_at
    times = reply_times(messages)
    sections = report_sections(trip, user)
    concerns = trip_concerns(trip.id)
    if not has_full_access(user):
        # A concern may be about the trip's own staff: a leader sees only those they raised,
        # as on a message's page, never who else raised one or that it exists.
        concerns = [c for c in concerns if c.raised_by_id == user.id]
    return render_template(
        "audit/trip_report.html",
        trip=trip,
        rows=[_row(m, full) for m in messages],
        counts=count_messages(messages),
        times=times,
        median=describe_wait(times.median),
        target_minutes=int(target().total_seconds() // 60),
        waiting=waiting_texts(trip_ids=[trip.id]),
        concerns=concerns,
        all_concerns=has_full_access(user),
        handler=is_handler(user),
        phones=trip_phone_summary(trip),
        chart=hour_chart(messages, start, end),
        approvals=sections.pop(APPROVALS_SLOT, []),
        sections=[s for slot in sections.values() for s in slot],
        generated_at=utcnow(),
    )


# --- The audit trail -------------------------------------------------------------------------


def _audit_form() -> AuditSearchForm:
    form = AuditSearchForm(formdata=request.args)
    actions = db.session.scalars(
        select(AuditEvent.action).distinct().order_by(AuditEvent.action)
    ).all()
    form.action.choices = choices([("", "Any action")] + [(a, a) for a in actions])
    systems = db.session.scalars(
        select(AuditEvent.actor).where(AuditEvent.actor != "user").distinct()
    ).all()
    users = db.session.scalars(select(User).order_by(User.name)).all()
    form.actor.choices = choices(
        [("", "Anyone")]
        + [(f"user:{u.id}", u.name) for u in users]
        + [(f"system:{name}", f"tripcomms ({name})") for name in sorted(systems)]
    )
    return form


def _audit_events_page(form: AuditSearchForm):
    query = select(AuditEvent)
    if form.action.data:
        query = query.where(AuditEvent.action == form.action.data)
    kind, _, who = (form.actor.data or "").partition(":")
    if kind == "user" and who.isdigit():
        query = query.where(AuditEvent.actor_id == int(who))
    elif kind == "system":
        query = query.where(AuditEvent.actor == who)
    if form.date_from.data:
        query = query.where(AuditEvent.created_at >= search.local_day_start(form.date_from.data))
    if form.date_to.data:
        day_after = search.local_day_start(form.date_to.data + timedelta(days=1))
        query = query.where(AuditEvent.created_at < day_after)
    return paged(query.order_by(AuditEvent.seq.desc()), per_page=50)


@bp.route("/audit")
@role_required(*AUDIT_ROLES)
def events():
    form = _audit_form()
    valid = not request.args or form.validate()
    pagination = _audit_events_page(form) if valid else None
    return render_template("audit/events.html", form=form, pagination=pagination, verified=None), (
        200 if valid else 422
    )


@bp.route("/audit/verify")
@role_required(*AUDIT_ROLES)
def verify():
    """Recompute the whole hash chain. A GET: checking changes nothing, so auditors may."""
    result = verify_chain()
    form = _audit_form()
    return render_template(
        "audit/events.html",
        form=form,
        pagination=_audit_events_page(form),
        verified=result,
        verified_at=utcnow(),
    )


# --- Auditors change nothing -----------------------------------------------------------------

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Signing out changes nothing but the auditor's own session.
AUDITOR_MAY_POST = frozenset({"auth.logout"})


def read_only(user: User) -> bool:
    """A user whose only role is auditor: they read logs, reports and exports, nothing more."""
    roles = user.effective_roles
    return Role.AUDITOR in roles and roles <= {Role.AUDITOR}


@bp.before_app_request
def _auditors_change_nothing():
    if request.method in SAFE_METHODS or request.endpoint in AUDITOR_MAY_POST:
        return None
    # Signing in lives in cookies (the session, or "remember me"): a request with none, such as
    # Twilio's webhooks, is nobody's, and need not load a user to find that out.
    if not request.cookies:
        return None
    if current_user.is_authenticated and read_only(current_user):
        abort(403)
    return None

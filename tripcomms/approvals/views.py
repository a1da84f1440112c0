"""Pages for personal-phone approvals: asking, the Headteacher's queue and decisions, a
leader's own requests, one request, and the term report.

A request is seen by its owner, by whoever filed it, by the Headteacher and by auditors; anyone
else gets 404. Only the Headteacher decides and revokes (403 for anyone else). Pages that list
requests first record as expired those whose window has ended, so the log says when each ended.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from tripcomms.approvals import (
    home,  # noqa: F401  (registers the home-page sections)
    hooks,
    queries,
)
from tripcomms.approvals import operations as ops
from tripcomms.approvals.forms import ApproveForm, DenyForm, ReportForm, RequestForm, RevokeForm
from tripcomms.approvals.models import ApprovalState, PersonalPhoneApproval
from tripcomms.audit.operations import SYSTEM
from tripcomms.auth.access import one_or_404, role_required
from tripcomms.auth.models import Role, StaffNumber, User
from tripcomms.errors import Conflict, InvalidInput
from tripcomms.extensions import db
from tripcomms.forms import apply_domain_error, carry_out
from tripcomms.listing import paged
from tripcomms.localtime import LONDON, parse_local, to_local
from tripcomms.mobile import display_number
from tripcomms.relay.numbers import relay_window
from tripcomms.relay.outbox import wake
from tripcomms.trips.access import trip_or_404
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow

bp = Blueprint("approvals", __name__)

REPORT_DEFAULT_DAYS = 122  # about four months, when no term is given


@bp.app_template_filter("waited")
def _waited(approval: PersonalPhoneApproval, now: datetime | None = None) -> str:
    return queries.age(approval, now)


@bp.app_template_filter("duration")
def _duration(seconds: float | None) -> str:
    return "" if seconds is None else queries.describe_duration(seconds)


def _me() -> User:
    return current_user._get_current_object()


def _sweep() -> None:
    """Write down the requests that have ended since anyone last looked (audited, once)."""
    if ops.expire_due(SYSTEM):
        db.session.commit()


def _wake(_done: object = None) -> None:
    """Start the outbox on the texts an operation queued (after the commit)."""
    wake(current_app._get_current_object())


def _approval_or_404(approval_id: int) -> PersonalPhoneApproval:
    return one_or_404(queries.visible_approval(_me(), approval_id))


def _local_input(value: datetime | None) -> str:
    local = to_local(value)
    return local.strftime("%Y-%m-%dT%H:%M") if local else ""


def _time_field(text: str | None, field: str, what: str) -> datetime | None:
    if not (text or "").strip():
        return None
    try:
        return parse_local(text, what=what)
    except InvalidInput as err:
        raise InvalidInput(err.message, field=field) from None


# --- Asking ---------------------------------------------------------------------------------


def _owners(user: User, trip: Trip) -> list[User]:
    """Whose phones ``user`` may ask for on ``trip``: their own, or (the office) any of the
    trip's staff."""
    if user.has_role(Role.OFFICE):
        staff = {u.id: u for u in [trip.leader, *trip.staff]}
        return sorted(staff.values(), key=lambda u: (u.id != user.id, u.name))
    return [user] if user.id in trip.staff_ids else []


def _number_choices(user: User, owners: list[User]) -> list[tuple[int, str]]:
    choices = []
    for owner in owners:
        if not owner.active:
            continue
        for staff_number in owner.personal_numbers:
            if owner.id == user.id:
                label = f"{display_number(staff_number.number)} (my own phone)"
            else:
                label = f"{owner.name}'s phone ending {staff_number.number[-3:]}"
            choices.append((staff_number.id, label))
    return choices


@bp.route("/trips/<int:trip_id>/personal-phone", methods=["GET", "POST"])
@role_required(Role.LEADER, Role.OFFICE)
def ask(trip_id: int):
    """Ask the Headteacher for a personal phone on a trip. "Check school phones" shows which
    are free over the window typed; "Ask the Headteacher" files the request."""
    user = _me()
    trip = trip_or_404(user, trip_id)
    window = relay_window(trip)
    form = RequestForm()
    form.number.choices = _number_choices(user, _owners(user, trip))
    if request.method == "GET":
        form.starts_at.data = _local_input(window.opens_at)
        form.ends_at.data = _local_input(window.closes_at)
    starts, ends = window.opens_at, window.closes_at
    time_error = None
    try:
        starts = _time_field(form.starts_at.data, "starts_at", "the start") or starts
        ends = _time_field(form.ends_at.data, "ends_at", "the end") or ends
    except InvalidInput as err:
        time_error = err
    # The form shows whole minutes: the window's own edges, so shown, mean the edges.
    if timedelta(0) < window.opens_at - starts < timedelta(minutes=1):
        starts = window.opens_at
    if timedelta(0) < ends - window.closes_at < timedelta(minutes=1):
        ends = window.closes_at
    free = queries.free_school_phones(trip, starts, ends) if ends > starts else []
    if form.send.data and form.validate_on_submit() and time_error is None:

        def file_request() -> PersonalPhoneApproval:
            staff_number = db.session.get(StaffNumber, form.number.data)
            if staff_number is None:
                raise InvalidInput("choose a phone", field="number")
            return ops.request_approval(
                user,
                trip,
                staff_number.user,
                staff_number.number,
                form.reason.data,
                starts_at=starts,
                ends_at=ends,
            )

        done = carry_out(
            file_request,
            form=form,
            then=_wake,
            success=lambda approval: f"Request {approval.id} has gone to the Headteacher.",
            redirect_to=lambda approval: url_for("approvals.show", approval_id=approval.id),
        )
        if done is not None:
            return done
    if time_error is not None:
        apply_domain_error(form, time_error)
    return render_template(
        "approvals/ask.html",
        trip=trip,
        form=form,
        window=window,
        free=free,
        checked=(starts, ends),
        can_ask=hooks.can_request(user, trip),
    )


# --- Lists ----------------------------------------------------------------------------------


@bp.route("/approvals")
@role_required(Role.HEAD)
def queue():
    """The Headteacher's queue: waiting requests oldest first, then what is in force now and
    what was decided in the last month."""
    _sweep()
    now = utcnow()
    return render_template(
        "approvals/queue.html",
        pending=queries.pending(),
        in_force=queries.all_in_force(now),
        recent=queries.recent_decisions(),
        now=now,
    )


@bp.route("/approvals/mine")
@role_required(Role.LEADER)
def mine():
    """The requests for my phones, or that I filed, newest first."""
    _sweep()
    return render_template(
        "approvals/mine.html", pagination=paged(queries.mine(_me())), now=utcnow()
    )


# --- One request ----------------------------------------------------------------------------


@bp.route("/approvals/<int:approval_id>")
@login_required
def show(approval_id: int):
    _sweep()
    approval = _approval_or_404(approval_id)
    user = _me()
    now = utcnow()
    is_head = user.has_role(Role.HEAD)
    return render_template(
        "approvals/show.html",
        approval=approval,
        now=now,
        sees_number=hooks.sees_number(user, approval),
        can_decide=is_head
        and approval.user_id != user.id
        and approval.state_at(now) == ApprovalState.PENDING,
        can_revoke=is_head and approval.state_at(now) == ApprovalState.APPROVED,
        revoke_form=RevokeForm(formdata=None),
    )


def _render_decide(approval: PersonalPhoneApproval, approve_form=None, deny_form=None):
    now = utcnow()
    return render_template(
        "approvals/decide.html",
        approval=approval,
        now=now,
        own=approval.user_id == current_user.id,
        sees_number=True,
        free_now=queries.free_school_phones(approval.trip, approval.starts_at, approval.ends_at)
        if approval.ends_at > now
        else [],
        approve_form=approve_form or ApproveForm(formdata=None),
        deny_form=deny_form or DenyForm(formdata=None),
    )


@bp.route("/approvals/<int:approval_id>/decide")
@role_required(Role.HEAD)
def decide(approval_id: int):
    """The Headteacher's decision page for one request."""
    _sweep()
    return _render_decide(_approval_or_404(approval_id))


def _decide(approval: PersonalPhoneApproval, which: str, form, decision, field: str, success: str):
    """Approve or deny: done, back to the request; a bad form, the decision page again. A
    request decided already, or ended, has nothing to correct in the form: that is flashed."""
    if form.validate_on_submit():
        done = carry_out(
            lambda: decision(form),
            form=form,
            field=field,
            flashed=(Conflict,),
            refused="Nothing changed",
            then=_wake,
            success=success,
            redirect_to=url_for("approvals.show", approval_id=approval.id),
        )
        if done is not None:
            return done
    return _render_decide(approval, **{f"{which}_form": form})


@bp.route("/approvals/<int:approval_id>/approve", methods=["POST"])
@role_required(Role.HEAD)
def approve(approval_id: int):
    approval = _approval_or_404(approval_id)
    return _decide(
        approval,
        "approve",
        ApproveForm(),
        lambda form: ops.approve(_me(), approval, form.conditions.data),
        "conditions",
        f"Approved: {approval.user.name}'s own phone for {approval.trip.title}.",
    )


@bp.route("/approvals/<int:approval_id>/deny", methods=["POST"])
@role_required(Role.HEAD)
def deny(approval_id: int):
    approval = _approval_or_404(approval_id)
    return _decide(
        approval,
        "deny",
        DenyForm(),
        lambda form: ops.deny(_me(), approval, form.reason.data),
        "reason",
        f"Denied: {approval.user.name} has been told why.",
    )


@bp.route("/approvals/<int:approval_id>/revoke", methods=["POST"])
@role_required(Role.HEAD)
def revoke(approval_id: int):
    approval = _approval_or_404(approval_id)
    form = RevokeForm()
    back = url_for("approvals.show", approval_id=approval.id)
    if not form.validate_on_submit():
        flash("This form had expired; nothing was changed. Try again.", "error")
        return redirect(back, code=303)
    return carry_out(
        lambda: ops.revoke(_me(), approval, form.reason.data),
        refused="Not revoked",
        then=_wake,
        success=f"Revoked: texts from {approval.user.name}'s own phone now reach no parent.",
        redirect_to=back,
    )


# --- The term report ------------------------------------------------------------------------


@bp.route("/approvals/report")
@role_required(Role.HEAD, Role.AUDITOR)
def report():
    """Exceptions over a date range (by default the current term): how many, for which trips
    and why, who decided and how fast, and how often a school phone was free after all."""
    _sweep()
    form = ReportForm(request.args)
    today = datetime.now(LONDON).date()
    first, last = queries.current_term(today)
    if form.validate():
        first = form.first_day.data or first
        last = form.last_day.data or last
    else:
        first, last = today - timedelta(days=REPORT_DEFAULT_DAYS), today
    if last < first:
        form.last_day.errors = [*form.last_day.errors, "the end must not be before the start"]
        first, last = last, first
    form.first_day.data, form.last_day.data = first, last
    return render_template(
        "approvals/report.html",
        form=form,
        report=queries.term_report(first, last),
    )

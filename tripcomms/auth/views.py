"""Sign-in, sign-out, one's own password, and the administrator's user pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_login import current_user, login_required, login_user, logout_user
from flask_wtf import FlaskForm
from sqlalchemy import select

from tripcomms.auth import operations as ops
from tripcomms.auth.access import role_required
from tripcomms.auth.forms import (
    ChangePasswordForm,
    LoginForm,
    NewUserForm,
    PasswordResetForm,
    UserForm,
)
from tripcomms.auth.models import Role, User
from tripcomms.extensions import db, limiter
from tripcomms.forms import carry_out

bp = Blueprint("auth", __name__)

BAD_LOGIN = "That email and password do not match an active account."


def safe_next(target: str | None) -> str | None:
    """``target`` if it is a path on this site, else None (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return None
    return target


def _login_failed(response) -> bool:
    return request.method == "POST" and response.status_code != 303


def _account_key() -> str:
    return "login-account:" + (request.form.get("email") or "").strip().lower()[:254]


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"],
    methods=["POST"],
    deduct_when=_login_failed,
    scope="login-address",
)
@limiter.limit(
    lambda: current_app.config["LOGIN_LIMIT_PER_ACCOUNT"],
    key_func=_account_key,
    methods=["POST"],
    deduct_when=_login_failed,
    scope="login-account",
)
def login():
    next_url = safe_next(request.args.get("next"))
    if current_user.is_authenticated:
        return redirect(next_url or url_for("main.home"))
    form = LoginForm()
    if form.validate_on_submit():
        user = ops.authenticate(form.email.data, form.password.data, address=request.remote_addr)
        db.session.commit()
        if user is not None:
            # A new session at sign-in: nothing set before it (by anyone) survives.
            session.clear()
            login_user(user)
            return redirect(next_url or url_for("main.home"), code=303)
        form.form_errors.append(BAD_LOGIN)
    elif request.method == "POST" and not form.errors.get("csrf_token"):
        form.form_errors.append(BAD_LOGIN)
    return render_template("auth/login.html", form=form), 200


@bp.route("/logout", methods=["POST"])
@login_required
def logout():
    if FlaskForm().validate_on_submit():
        ops.note_logout(current_user._get_current_object())
        db.session.commit()
        logout_user()
        session.clear()
        flash("You are signed out.", "info")
        return redirect(url_for("auth.login"), code=303)
    abort(400)


@bp.route("/account/password", methods=["GET", "POST"])
@login_required
def change_password():
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        done = carry_out(
            lambda: ops.change_own_password(user, form.current.data, form.password.data),
            form=form,
            # The session token changed: sign in again in this browser only.
            then=lambda _: login_user(user),
            success="Your password is changed. Other devices are signed out.",
            redirect_to=url_for("main.home"),
        )
        if done is not None:
            return done
    return render_template("auth/change_password.html", form=form)


# --- User administration -------------------------------------------------------------------


@bp.route("/admin/users")
@role_required(Role.ADMIN)
def users():
    rows = db.session.scalars(select(User).order_by(User.active.desc(), User.name)).all()
    return render_template("auth/users.html", users=rows, form=FlaskForm())


def _numbers_text(user: User) -> str:
    return "\n".join(n.number for n in user.personal_numbers)


def _lines(text: str | None) -> list[str]:
    return [line for line in (text or "").splitlines() if line.strip()]


@bp.route("/admin/users/new", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def new_user():
    form = NewUserForm()
    if form.validate_on_submit():
        done = carry_out(
            lambda: ops.create_user(
                current_user._get_current_object(),
                email=form.email.data,
                name=form.name.data,
                roles=form.roles.data,
                password=form.password.data,
                personal_numbers=_lines(form.personal_numbers.data),
            ),
            form=form,
            success=lambda user: f"Account created for {user.name}.",
            redirect_to=url_for("auth.users"),
        )
        if done is not None:
            return done
    return render_template("auth/user_form.html", form=form, user=None)


@bp.route("/admin/users/<int:user_id>", methods=["GET", "POST"])
@role_required(Role.ADMIN)
def edit_user(user_id: int):
    user = db.get_or_404(User, user_id)
    form = UserForm(obj=None if request.method == "POST" else user)
    if request.method == "GET":
        form.roles.data = sorted(r.value for r in user.roles)
        form.personal_numbers.data = _numbers_text(user)
    if form.validate_on_submit():
        done = carry_out(
            lambda: ops.update_user(
                current_user._get_current_object(),
                user,
                email=form.email.data,
                name=form.name.data,
                roles=form.roles.data,
                personal_numbers=_lines(form.personal_numbers.data),
            ),
            form=form,
            success=lambda _: f"Saved {user.name}.",
            redirect_to=url_for("auth.users"),
        )
        if done is not None:
            return done
    return render_template(
        "auth/user_form.html",
        form=form,
        user=user,
        reset_form=PasswordResetForm(formdata=None),
        action_form=FlaskForm(),
    )


@bp.route("/admin/users/<int:user_id>/password", methods=["POST"])
@role_required(Role.ADMIN)
def reset_password(user_id: int):
    user = db.get_or_404(User, user_id)
    form = PasswordResetForm()
    back = url_for("auth.edit_user", user_id=user.id)
    if not form.validate_on_submit():
        flash("Password not changed: enter a new password.", "error")
        return redirect(back, code=303)
    return carry_out(
        lambda: ops.set_password(current_user._get_current_object(), user, form.password.data),
        refused="Password not changed",
        success=f"Password reset for {user.name}; their other sessions are ended.",
        redirect_to=back,
    )


@bp.route("/admin/users/<int:user_id>/active", methods=["POST"])
@role_required(Role.ADMIN)
def set_active(user_id: int):
    user = db.get_or_404(User, user_id)
    if not FlaskForm().validate_on_submit():
        abort(400)
    active = request.form.get("active") == "1"
    return carry_out(
        lambda: ops.set_active(current_user._get_current_object(), user, active),
        success=f"{user.name} is {'active' if active else 'deactivated'}.",
        redirect_to=url_for("auth.users"),
    )

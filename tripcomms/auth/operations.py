"""Staff accounts: each operation takes the acting user, checks, changes, audits, flushes."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from functools import cache
from importlib import resources

from flask import current_app
from sqlalchemy import func, select
from werkzeug.security import check_password_hash, generate_password_hash

from tripcomms.audit.operations import SystemActor, record
from tripcomms.auth.models import Role, StaffNumber, User, UserRole, new_session_token
from tripcomms.errors import Conflict, InvalidInput, PolicyError
from tripcomms.extensions import db
from tripcomms.mobile import normalise_number

EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MAX_PASSWORD_LENGTH = 200
# check_password_hash against this when the email is unknown, so both cases take as long.
_DUMMY_HASH_CACHE: dict[str, str] = {}


@cache
def common_passwords() -> frozenset[str]:
    text = resources.files("tripcomms.auth").joinpath("common_passwords.txt").read_text()
    return frozenset(
        line.strip().lower() for line in text.splitlines() if line and not line.startswith("#")
    )


def clean_email(email: str) -> str:
    cleaned = (email or "").strip().lower()
    if not cleaned:
        raise InvalidInput("an email address is required", field="email")
    if len(cleaned) > 254 or not EMAIL_RE.match(cleaned):
        raise InvalidInput(f"{email!r} is not an email address", field="email")
    return cleaned


def clean_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise InvalidInput("a name is required", field="name")
    if len(cleaned) > 120:
        raise InvalidInput("a name is at most 120 characters", field="name")
    return cleaned


def check_password_policy(password: str) -> None:
    minimum = current_app.config["MIN_PASSWORD_LENGTH"]
    if len(password or "") < minimum:
        raise InvalidInput(f"a password needs at least {minimum} characters", field="password")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(
            f"a password is at most {MAX_PASSWORD_LENGTH} characters", field="password"
        )
    if password.lower() in common_passwords():
        raise InvalidInput(
            "that password is on the list of commonly used passwords; choose another",
            field="password",
        )


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=current_app.config["PASSWORD_HASH_METHOD"])


def _clean_roles(roles: Iterable[str | Role]) -> set[Role]:
    try:
        cleaned = {Role(role) for role in roles}
    except ValueError as err:
        valid = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role: {err.args[0]} (valid: {valid})", field="roles") from None
    if not cleaned:
        raise InvalidInput("choose at least one role", field="roles")
    return cleaned


def _clean_numbers(numbers: Iterable[str], user: User | None) -> list[str]:
    cleaned: list[str] = []
    for text in numbers:
        if not (text or "").strip():
            continue
        try:
            number = normalise_number(text)
        except InvalidInput as err:
            raise InvalidInput(f"personal number: {err}", field="personal_numbers") from None
        if number in cleaned:
            continue
        owner = db.session.scalar(select(StaffNumber).where(StaffNumber.number == number))
        if owner is not None and (user is None or owner.user_id != user.id):
            raise Conflict(
                f"personal number {text.strip()} is already registered to {owner.user.name}",
                field="personal_numbers",
            )
        cleaned.append(number)
    return cleaned


def _email_taken(email: str, user: User | None) -> bool:
    query = select(User.id).where(func.lower(User.email) == email)
    if user is not None:
        query = query.where(User.id != user.id)
    return db.session.scalar(query) is not None


def create_user(
    actor: User | SystemActor,
    *,
    email: str,
    name: str,
    roles: Iterable[str | Role],
    password: str,
    personal_numbers: Iterable[str] = (),
) -> User:
    """Create an active staff account. Raises InvalidInput or Conflict; nothing is changed then."""
    email = clean_email(email)
    name = clean_name(name)
    role_set = _clean_roles(roles)
    check_password_policy(password)
    if _email_taken(email, None):
        raise Conflict(f"there is already an account for {email}", field="email")
    numbers = _clean_numbers(personal_numbers, None)
    user = User(email=email, name=name, password_hash=hash_password(password))
    user.role_rows = [UserRole(role=role) for role in sorted(role_set)]
    user.personal_numbers = [StaffNumber(number=number) for number in numbers]
    db.session.add(user)
    db.session.flush()
    record(
        actor,
        "user.created",
        user,
        roles=sorted(role_set),
        personal_numbers=len(numbers),
    )
    return user


def update_user(
    actor: User,
    user: User,
    *,
    email: str,
    name: str,
    roles: Iterable[str | Role],
    personal_numbers: Iterable[str],
) -> User:
    """Change a user's details, roles and personal numbers. Raises InvalidInput or Conflict."""
    email = clean_email(email)
    name = clean_name(name)
    role_set = _clean_roles(roles)
    if _email_taken(email, user):
        raise Conflict(f"there is already an account for {email}", field="email")
    numbers = _clean_numbers(personal_numbers, user)
    if user.id == actor.id and Role.ADMIN in user.roles and Role.ADMIN not in role_set:
        raise PolicyError("you cannot remove your own administrator role", field="roles")
    changes: dict[str, object] = {}
    if email != user.email:
        changes["email"] = True
        user.email = email
    if name != user.name:
        changes["name"] = True
        user.name = name
    if role_set != user.roles:
        changes["roles"] = sorted(role_set)
        keep = [row for row in user.role_rows if row.role in role_set]
        user.role_rows = keep + [
            UserRole(role=role) for role in sorted(role_set - {r.role for r in keep})
        ]
    old_numbers = [n.number for n in user.personal_numbers]
    if numbers != old_numbers:
        changes["personal_numbers"] = {
            "added": len(set(numbers) - set(old_numbers)),
            "removed": len(set(old_numbers) - set(numbers)),
        }
        keep_numbers = [n for n in user.personal_numbers if n.number in numbers]
        user.personal_numbers = keep_numbers + [
            StaffNumber(number=n) for n in numbers if n not in old_numbers
        ]
    if changes:
        db.session.flush()
        record(actor, "user.updated", user, **changes)
    return user


def set_password(actor: User | SystemActor, user: User, password: str) -> None:
    """Set a new password and end every session the user has open."""
    check_password_policy(password)
    user.password_hash = hash_password(password)
    user.session_token = new_session_token()
    db.session.flush()
    action = "user.password_changed" if actor is user else "user.password_reset"
    record(actor, action, user)


def change_own_password(user: User, current: str, new: str) -> None:
    if not check_password_hash(user.password_hash, current or ""):
        raise InvalidInput("your current password is not right", field="current")
    set_password(user, user, new)


def set_active(actor: User, user: User, active: bool) -> None:
    """Activate or deactivate an account; deactivation ends its sessions at once."""
    if user.id == actor.id and not active:
        raise PolicyError("you cannot deactivate your own account")
    if user.active == active:
        return
    user.active = active
    if not active:
        user.session_token = new_session_token()
    db.session.flush()
    record(actor, "user.activated" if active else "user.deactivated", user)


def _email_digest(email: str) -> str:
    return hashlib.sha256(email.encode()).hexdigest()[:16]


def authenticate(email: str, password: str, *, address: str | None) -> User | None:
    """Return the user if the credentials are right and the account active, else None.

    Every failure is audited with its reason; the caller shows one generic message.
    """
    try:
        cleaned = clean_email(email)
    except InvalidInput:
        cleaned = (email or "").strip().lower()[:254]
    user = db.session.scalar(select(User).where(User.email == cleaned)) if cleaned else None
    if user is None:
        method = current_app.config["PASSWORD_HASH_METHOD"]
        if method not in _DUMMY_HASH_CACHE:
            _DUMMY_HASH_CACHE[method] = generate_password_hash("not-a-password", method=method)
        check_password_hash(_DUMMY_HASH_CACHE[method], password or "")
        record(
            None,
            "login.failed",
            reason="unknown_email",
            email_digest=_email_digest(cleaned),
            address=address,
        )
        return None
    if not check_password_hash(user.password_hash, password or ""):
        record(None, "login.failed", user, reason="bad_password", address=address)
        return None
    if not user.active:
        record(None, "login.failed", user, reason="inactive", address=address)
        return None
    record(user, "login.succeeded", user, address=address)
    return user


def note_logout(user: User) -> None:
    record(user, "logout", user)

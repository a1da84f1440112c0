"""The home page: one section for each role the user holds, contributed by each package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, render_template
from flask_login import current_user, login_required
from sqlalchemy import func, select

from tripcomms.auth.models import Role, User
from tripcomms.extensions import db

bp = Blueprint("main", __name__)


@dataclass(frozen=True)
class HomeSection:
    roles: tuple[Role, ...]
    template: str
    context: Callable[[User], dict[str, Any]]


HOME_SECTIONS: list[HomeSection] = []


def home_section(*roles: Role, template: str):
    """Register a function that gives the context of a home-page section for ``roles``."""

    def decorator(fn: Callable[[User], dict[str, Any]]):
        HOME_SECTIONS.append(HomeSection(roles, template, fn))
        return fn

    return decorator


@bp.route("/")
@login_required
def home():
    user = current_user._get_current_object()
    sections = [
        {"template": section.template, **section.context(user)}
        for section in HOME_SECTIONS
        if user.has_role(*section.roles)
    ]
    return render_template("main/home.html", sections=sections)


@home_section(Role.ADMIN, template="main/_admin_section.html")
def _admin_section(user: User) -> dict[str, Any]:
    active = select(func.count()).select_from(User).where(User.active.is_(True))
    return {"active_users": db.session.scalar(active)}

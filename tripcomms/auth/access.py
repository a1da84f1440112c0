"""Who may reach what: role checks on routes and one pattern for object checks.

Routes check the role with ``@role_required(...)``. Routes that load an object load it through a
query already limited to what the user may see, and answer 404 when it is not there, so that a
leader cannot tell another trip's id from a missing one.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort
from flask_login import current_user
from sqlalchemy import Select

from tripcomms.auth.models import Role
from tripcomms.extensions import db, login_manager

F = TypeVar("F", bound=Callable[..., Any])


def role_required(*roles: Role) -> Callable[[F], F]:
    """Anonymous users go to the login page; signed-in users without any of ``roles`` get 403."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        wrapped.required_roles = roles  # type: ignore[attr-defined]
        return wrapped  # type: ignore[return-value]

    return decorator


def one_or_404(query: Select) -> Any:
    """The single row of a query already limited to what the user may see, or 404."""
    found = db.session.scalar(query)
    if found is None:
        abort(404)
    return found

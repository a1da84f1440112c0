"""Request-wide behaviour: security headers, error pages, template helpers."""

from __future__ import annotations

from flask import Flask, render_template, request
from flask_login import current_user
from flask_wtf.csrf import CSRFError
from werkzeug.routing import IntegerConverter

from tripcomms.auth.models import Role
from tripcomms.localtime import format_local
from tripcomms.mobile import display_number, mask_number

# Row ids, contacts' codes and page numbers are kept in (or compared with) 32-bit integer
# columns. A bigger number from an address fails in the database (SQLite: "Python int too
# large", PostgreSQL: "integer out of range"), so it never gets that far.
MAX_INT = 2**31 - 1


class IdConverter(IntegerConverter):
    """``<int:...>`` in a route is an id or a code: at most MAX_INT. A bigger number matches
    no route, so the answer is 404, as for any id that does not exist."""

    def __init__(self, map, fixed_digits=0, min=None, max=MAX_INT, signed=False):
        super().__init__(map, fixed_digits, min, max, signed)


def register_url_converters(app: Flask) -> None:
    """Before any blueprint: a rule takes its converter when it is added."""
    app.url_map.converters["int"] = IdConverter


def db_int(text: str) -> int:
    """``type=`` for ``request.args.get`` of an id, a code or a page number: the number, or a
    ValueError (so the argument's default) unless it is 0 to MAX_INT in ASCII digits."""
    text = text.strip()
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_INT:
        raise ValueError(f"not a number from 0 to {MAX_INT}")
    return int(text)


CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


def register_security_headers(app: Flask) -> None:
    @app.after_request
    def _headers(response):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault(
            "Permissions-Policy", "camera=(), microphone=(), geolocation=()"
        )
        if app.config["SESSION_COOKIE_SECURE"]:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response


ERROR_TEXT = {
    400: ("Bad request", "The request could not be understood. Go back and try again."),
    403: ("Not allowed", "Your account does not have the role needed for this page."),
    404: ("Not found", "There is nothing here, or it is not yours to see."),
    405: ("Not allowed", "That page does not take that kind of request."),
    413: ("Too large", "That upload is too large. Files must be under 10 MB."),
    429: (
        "Too many attempts",
        "Too many attempts in a short time. Wait 15 minutes and try again, "
        "or ask the office to reset your password.",
    ),
    500: (
        "Something went wrong",
        "Nothing you entered was saved by the failed request. Try again; if it keeps "
        "happening, tell the school office.",
    ),
}


def register_error_pages(app: Flask) -> None:
    def render(code: int, detail: str | None = None):
        title, text = ERROR_TEXT[code]
        return render_template(
            "errors/error.html", code=code, title=title, text=detail or text
        ), code

    for code in ERROR_TEXT:
        app.register_error_handler(code, lambda err, code=code: render(code))

    @app.errorhandler(CSRFError)
    def _csrf(err):
        return render(
            400,
            "This form had expired or did not come from this site, so nothing was saved. "
            "Go back, reload the page and try again.",
        )


# The main menu: (label, endpoint, roles that see it). Packages add their entries here.
NAV_ITEMS: list[tuple[str, str, tuple[Role, ...]]] = [
    ("Trips", "trips.index", (Role.LEADER, Role.OFFICE, Role.AUDITOR)),
    ("Texts to review", "relay.review", (Role.OFFICE,)),
    ("Trip numbers", "relay.number_admin", (Role.ADMIN,)),
    ("Staff accounts", "auth.users", (Role.ADMIN,)),
    ("Phones", "phones.phones", (Role.OFFICE,)),
    ("Loans", "phones.loans", (Role.OFFICE,)),
    ("Phone approvals", "approvals.queue", (Role.HEAD,)),
    ("My phone requests", "approvals.mine", (Role.LEADER,)),
    ("Phone exceptions report", "approvals.report", (Role.AUDITOR,)),
    ("Message templates", "inbox.templates", (Role.OFFICE,)),
    # Only where the simulator runs (the list shows endpoints that exist): any signed-in user.
    ("Simulated phones", "handsets.index", tuple(Role)),
    ("Log", "audit.log", (Role.HEAD, Role.DSL, Role.AUDITOR, Role.LEADER)),
    ("Concerns", "safeguarding.concerns", (Role.DSL, Role.HEAD)),
    ("Audit trail", "audit.events", (Role.HEAD, Role.AUDITOR)),
]


def register_template_helpers(app: Flask) -> None:
    app.add_template_filter(format_local, "localtime")
    app.add_template_filter(display_number, "phone")
    app.add_template_filter(mask_number, "masked")

    @app.context_processor
    def _globals():
        items = []
        if current_user.is_authenticated:
            items = [
                {"label": label, "endpoint": endpoint}
                for label, endpoint, roles in NAV_ITEMS
                if endpoint in app.view_functions and current_user.has_role(*roles)
            ]
        return {"school_name": app.config["SCHOOL_NAME"], "nav_items": items}

"""Form helpers shared by every package, and the way a view carries out one operation."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import date
from typing import TypeVar

from flask import flash, redirect, request
from flask_wtf import FlaskForm
from sqlalchemy.exc import IntegrityError
from werkzeug.wrappers import Response
from wtforms import SelectMultipleField, ValidationError, widgets

from tripcomms.errors import Conflict, DomainError
from tripcomms.extensions import db
from tripcomms.web import MAX_INT

T = TypeVar("T")
log = logging.getLogger(__name__)

# Two requests passed an operation's checks at the same moment (two people saving one name,
# say), and a unique constraint refused the second when it wrote: nothing of it was saved.
CLASH = "someone else saved a change here at the same moment. Check the page and try again"

# The days a date in a form may name: any school's records, and far enough from the ends of
# what a date can hold that a page may work out weeks either side.
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2099, 12, 31)


def within_record_years(form, field) -> None:
    """A form validator: an optional date, if given, from FIRST_DAY to LAST_DAY."""
    if field.data is not None and not FIRST_DAY <= field.data <= LAST_DAY:
        raise ValidationError(f"choose a date from {FIRST_DAY:%Y} to {LAST_DAY:%Y}")


def row_id(value: object) -> int:
    """``coerce=`` of a field that holds a row's id: the id, or a ValueError (so the field's
    "could not coerce" error) unless it is a whole number from 0 to MAX_INT. A bigger number
    is not refused by a look-up: the database fails on it."""
    number = int(value)  # type: ignore[call-overload]
    if not 0 <= number <= MAX_INT:
        raise ValueError(f"{number} is not an id")
    return number


def without_nul(value: object) -> object:
    """A field's text (or list of texts) less NUL characters, each shown as U+FFFD as the
    webhooks do: PostgreSQL cannot store NUL, and nobody types one."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, list):
        return [without_nul(v) for v in value]
    return value


class Form(FlaskForm):
    """The base of every form of the app: each field's data passes ``without_nul``, so what
    was typed reaches the operations (and the database) whatever bytes came with it."""

    class Meta:
        def bind_field(self, form, unbound_field, options):
            filters = [*unbound_field.kwargs.get("filters", ()), without_nul]
            return super().bind_field(form, unbound_field, {**options, "filters": filters})


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


def apply_domain_error(form: FlaskForm, err: DomainError, default_field: str | None = None) -> None:
    """Show a domain error against the field it names, or against the whole form."""
    name = err.field or default_field
    field = getattr(form, name, None) if name else None
    if field is not None and hasattr(field, "errors"):
        # wtforms gives a tuple before validation has run on that field.
        field.errors = [*field.errors, err.message]
    else:
        form.form_errors.append(err.message)


def sentence(err: DomainError) -> str:
    """A domain error as a flash message of its own: capitalised, with a full stop."""
    return err.message[:1].upper() + err.message[1:] + "."


def is_clash(err: IntegrityError) -> bool:
    """Whether a unique constraint refused the row (PostgreSQL's unique violation, SQLite's
    UNIQUE or PRIMARY KEY): the trace of a request that wrote the same thing first. A NOT NULL,
    CHECK or foreign key failure is a fault in tripcomms, not a clash, and stays an error."""
    orig = err.orig
    sqlstate = getattr(orig, "sqlstate", None)
    if sqlstate is not None:
        return sqlstate == "23505"
    return getattr(orig, "sqlite_errorname", "") in (
        "SQLITE_CONSTRAINT_UNIQUE",
        "SQLITE_CONSTRAINT_PRIMARYKEY",
    )


def refuse_clash(err: IntegrityError, refused: str | None = None) -> str:
    """After an IntegrityError at a flush or commit: re-raise it unless it is a clash; else
    roll back, log it at warning level by the constraint's name (the database's own message
    holds the values, which may be a parent's number or a text) and return the refusal to
    show, after ``refused`` or "Not saved"."""
    if not is_clash(err):
        raise err
    db.session.rollback()
    diag = getattr(err.orig, "diag", None)
    # SQLite says "UNIQUE constraint failed: table.column", names only.
    constraint = getattr(diag, "constraint_name", None) or str(err.orig).split("\n")[0]
    log.warning(
        "%s: not saved: another request saved the same at the same moment (%s)",
        request.endpoint,
        constraint,
    )
    return f"{refused or 'Not saved'}: {CLASH}."


def carry_out(
    operation: Callable[[], T],
    *,
    success: str | Callable[[T], str] | None,
    redirect_to: str | Callable[[T], str],
    form: FlaskForm | None = None,
    field: str | None = None,
    refused: str | None = None,
    flashed: tuple[type[DomainError], ...] = (),
    then: Callable[[T], object] | None = None,
    keyed: bool = False,
) -> Response | None:
    """Carry out one domain operation for a view, and commit it or roll it back.

    Done: commit, call ``then`` with the operation's result (to wake the outbox, say), flash
    ``success`` (a text, or a function of the result; None flashes nothing) and redirect with
    303 to ``redirect_to`` (an address, or a function of the result).

    Refused with a ``DomainError``: roll back (or commit, for an error that keeps what was
    written). With a ``form``, show the error on it (on the field the error names, else on
    ``field``) and return None: the view shows the form again. Without a form, or for an error
    of a ``flashed`` type (nothing in the form would fix it: decided meanwhile, say), flash
    the error (after ``refused``, as in "Not retired: ...") and redirect to ``redirect_to``,
    which must then be an address.

    Refused by a unique constraint at a flush or the commit (another request saved the same
    name after this one's check, say): roll back and refuse as above with ``CLASH``, after
    ``refused`` or "Not saved": on the form (which keeps what was typed), else flashed. A
    ``keyed`` operation is guarded by a one-time key (a compose form's, a retry's), so there
    the clash is the same form sent twice at once: the operation is carried out once more, and
    answers as it does a second click that comes after the first (with the first's outcome;
    nothing is sent twice). A second clash then is refused as above.
    """
    if (form is None or flashed) and callable(redirect_to):
        raise TypeError("a refusal that is flashed needs an address to go back to")
    # A keyed operation has a second try after a clash; anything else has one.
    for last_try in (False, True) if keyed else (True,):
        try:
            result = operation()
            db.session.commit()
            break
        except DomainError as err:
            if err.keeps_written:
                db.session.commit()
            else:
                db.session.rollback()
            if form is not None and not isinstance(err, flashed):
                apply_domain_error(form, err, field)
                return None
            flash(f"{refused}: {err.message}." if refused else sentence(err), "error")
            return redirect(redirect_to, code=303)
        except IntegrityError as err:
            message = refuse_clash(err, refused)
            if not last_try:
                continue
            if form is not None:
                # On ``field``, as a refusal that names no field, else on the whole form.
                apply_domain_error(form, Conflict(message), field)
                return None
            flash(message, "error")
            return redirect(redirect_to, code=303)
    if then is not None:
        then(result)
    if success is not None:
        flash(success(result) if callable(success) else success, "success")
    return redirect(redirect_to(result) if callable(redirect_to) else redirect_to, code=303)

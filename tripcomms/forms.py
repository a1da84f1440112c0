"""Form helpers shared by every package, and the way a view carries out one operation."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flask import flash, redirect
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import SelectMultipleField, widgets

from tripcomms.errors import DomainError
from tripcomms.extensions import db
from tripcomms.web import MAX_INT

T = TypeVar("T")


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
    """
    if (form is None or flashed) and callable(redirect_to):
        raise TypeError("a refusal that is flashed needs an address to go back to")
    try:
        result = operation()
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
    db.session.commit()
    if then is not None:
        then(result)
    if success is not None:
        flash(success(result) if callable(success) else success, "success")
    return redirect(redirect_to(result) if callable(redirect_to) else redirect_to, code=303)

"""Form helpers shared by every package."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, widgets

from tripcomms.errors import DomainError
from tripcomms.web import MAX_INT


def row_id(value: object) -> int:
    """``coerce=`` of a field that holds a row's id: the id, or a ValueError (so the field's
    "could not coerce" error) unless it is a whole number from 0 to MAX_INT. A bigger number
    is not refused by a look-up: the database fails on it."""
    number = int(value)  # type: ignore[call-overload]
    if not 0 <= number <= MAX_INT:
        raise ValueError(f"{number} is not an id")
    return number


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

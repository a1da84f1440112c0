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

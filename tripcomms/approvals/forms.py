from __future__ import annotations

from wtforms import DateField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import Length, Optional

from tripcomms.approvals.models import REASON_MAX
from tripcomms.forms import Form, row_id, within_record_years

# Typed as London wall-clock time; the browser shows its own date and time picker.
LOCAL_TIME = {"type": "datetime-local"}


class RequestForm(Form):
    number = SelectField("Phone", coerce=row_id)
    reason = TextAreaField(
        "Why a school phone will not do",
        validators=[Length(max=REASON_MAX)],
        description='The Headteacher reads this first, e.g. "all school phones are out on the '
        'Year 3 trip".',
    )
    starts_at = StringField("From", validators=[Length(max=20)], render_kw=LOCAL_TIME)
    ends_at = StringField(
        "Until",
        validators=[Length(max=20)],
        render_kw=LOCAL_TIME,
        description="By default the trip's relay window; never beyond it.",
    )
    check = SubmitField("Check school phones")
    send = SubmitField("Ask the Headteacher")


class ApproveForm(Form):
    conditions = StringField(
        "Conditions (optional)",
        validators=[Length(max=REASON_MAX)],
        description="e.g. only until the coach is back; school phone from tomorrow.",
    )


class DenyForm(Form):
    reason = StringField(
        "Why not",
        validators=[Length(max=REASON_MAX)],
        description="The member of staff is told this by text.",
    )


class RevokeForm(Form):
    reason = StringField(
        "Why it is withdrawn",
        validators=[Length(max=REASON_MAX)],
        description="From now on texts from this phone reach no parent.",
    )


class ReportForm(Form):
    """The report's date range: a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    first_day = DateField("From", validators=[Optional(), within_record_years])
    last_day = DateField("To", validators=[Optional(), within_record_years])

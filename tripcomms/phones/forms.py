from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    IntegerField,
    RadioField,
    SelectField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from tripcomms.forms import Form, MultiCheckboxField, row_id
from tripcomms.phones.models import PhoneStatus, ReturnCondition
from tripcomms.phones.operations import (
    LABEL_MAX,
    MANUAL_STATUSES,
    MOST_PHONES_PER_BOOKING,
    NOTES_MAX,
    SERIAL_MAX,
    SHORT_NOTE_MAX,
)

# Typed as London wall-clock time; the browser shows its own date and time picker.
LOCAL_TIME = {"type": "datetime-local"}
STATUS_LABELS = {
    PhoneStatus.AVAILABLE: "Available",
    PhoneStatus.ON_LOAN: "On loan",
    PhoneStatus.REPAIR: "In repair",
    PhoneStatus.LOST: "Lost",
    PhoneStatus.RETIRED: "Retired",
}
CONDITION_LABELS = {
    ReturnCondition.OK: "OK: back in the pool",
    ReturnCondition.DAMAGED: "Damaged: goes for repair",
    ReturnCondition.LOST: "Lost: not come back",
}


class PhoneForm(Form):
    label = StringField(
        "Label",
        validators=[DataRequired(), Length(max=LABEL_MAX)],
        description='As written on the phone, e.g. "Trip phone 3".',
    )
    number = TelField(
        "Mobile number",
        validators=[DataRequired(), Length(max=40)],
        description="The school SIM's number, e.g. 07400 123456.",
    )
    serial = StringField("Serial number or IMEI (optional)", validators=[Length(max=SERIAL_MAX)])
    notes = TextAreaField("Notes (optional)", validators=[Length(max=NOTES_MAX)])


class StatusForm(Form):
    status = SelectField(
        "New status", choices=[SelectChoice(s.value, STATUS_LABELS[s]) for s in MANUAL_STATUSES]
    )
    note = StringField("Note (optional)", validators=[Length(max=SHORT_NOTE_MAX)])


class RetireForm(Form):
    note = StringField("Why it is retired (optional)", validators=[Length(max=SHORT_NOTE_MAX)])


class ImportForm(Form):
    file = FileField(
        "Phones file (CSV)",
        validators=[FileRequired("choose a CSV file")],
        description="First row label,number,serial; one phone a row. Saved from a spreadsheet "
        "as CSV UTF-8. Nothing is imported unless every row is right.",
    )


class BookingForm(Form):
    count = IntegerField(
        "How many phones (any that are free)",
        validators=[Optional(), NumberRange(min=1, max=MOST_PHONES_PER_BOOKING)],
    )
    phones = MultiCheckboxField("Or choose phones", coerce=row_id, validate_choice=False)
    starts_at = StringField("From", validators=[Length(max=20)], render_kw=LOCAL_TIME)
    ends_at = StringField("Until", validators=[Length(max=20)], render_kw=LOCAL_TIME)


class IssueForm(Form):
    phone_id = SelectField("Phone", coerce=row_id, validate_choice=False)
    holder_id = SelectField("Issued to", coerce=row_id, validate_choice=False)
    due_at = StringField(
        "Due back",
        validators=[Length(max=20)],
        render_kw=LOCAL_TIME,
        description="By default 12 hours after the trip ends.",
    )
    condition_out = StringField(
        "Condition when issued (optional)",
        validators=[Length(max=SHORT_NOTE_MAX)],
        description="Scratches, cracks, a missing case: anything to check when it comes back.",
    )


class ReturnForm(Form):
    condition = RadioField(
        "Condition",
        choices=[SelectChoice(c.value, label) for c, label in CONDITION_LABELS.items()],
        default=ReturnCondition.OK.value,
    )
    charger_returned = BooleanField("The charger came back")
    texts_deleted = BooleanField("Texts deleted from the handset (they hold parents' names)")
    notes = TextAreaField("Notes (optional)", validators=[Length(max=SHORT_NOTE_MAX)])


class PeriodForm(Form):
    """The phone list's availability filter: a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    starts_at = StringField("Free from", validators=[Length(max=20)], render_kw=LOCAL_TIME)
    ends_at = StringField("Until", validators=[Length(max=20)], render_kw=LOCAL_TIME)

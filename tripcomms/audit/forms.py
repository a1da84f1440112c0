"""Search forms of the log and the audit trail. They are GET forms: a search changes
nothing, so it has no CSRF token, and its address can be bookmarked or shared."""

from __future__ import annotations

from wtforms import DateField, HiddenField, SearchField, SelectField, StringField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional, ValidationError

from tripcomms.forms import Form, within_record_years
from tripcomms.localtime import format_local
from tripcomms.relay.models import Status

STATUS_LABELS = {
    Status.RECEIVED: "Received",
    Status.BLOCKED: "Blocked by a content rule",
    Status.PENDING: "Waiting to send",
    Status.SENDING: "Sending",
    Status.QUEUED: "Queued at Twilio",
    Status.ACCEPTED: "Accepted by Twilio",
    Status.SENT: "Sent",
    Status.DELIVERED: "Delivered",
    Status.UNDELIVERED: "Undelivered",
    Status.FAILED: "Failed",
}


def choices(pairs) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in pairs]


class GetForm(Form):
    class Meta:
        csrf = False


class DateRangeMixin:
    def validate_date_to(self, field) -> None:
        within_record_years(self, field)
        start = self.date_from.data  # type: ignore[attr-defined]
        if field.data is not None and start is not None and field.data < start:
            raise ValidationError("the end date is before the start date")

    def validate_date_from(self, field) -> None:
        within_record_years(self, field)


class LogSearchForm(DateRangeMixin, GetForm):
    text = SearchField(
        "Words in the text",
        validators=[Optional(), Length(max=200)],
        description="Every word must be in the message, e.g. coach late",
    )
    trip = SelectField("Trip", choices=choices([("", "Any trip")]), default="")
    date_from = DateField("From (date)", validators=[Optional()])
    date_to = DateField("To (date)", validators=[Optional()])
    person = StringField(
        "Parent, carer or pupil",
        validators=[Optional(), Length(max=100)],
        description="A name or part of one",
    )
    staff = SelectField("Staff member", choices=choices([("", "Anyone")]), default="")
    direction = SelectField(
        "Direction",
        choices=choices([("", "In and out"), ("in", "Received"), ("out", "Sent")]),
        default="",
    )
    status = SelectField(
        "Status",
        choices=choices(
            [("", "Any status")] + [(s.value, label) for s, label in STATUS_LABELS.items()]
        ),
        default="",
    )
    order = SelectField(
        "Order",
        choices=choices([("newest", "Newest first"), ("oldest", "Oldest first")]),
        default="newest",
    )
    contact = HiddenField()
    pupil = HiddenField()

    def set_choices(self, trips, staff) -> None:
        self.trip.choices = choices(
            [("", "Any trip")]
            + [(str(t.id), f"{t.title} ({format_local(t.starts_at, '%d %b %Y')})") for t in trips]
        )
        self.staff.choices = choices([("", "Anyone")] + [(str(u.id), u.name) for u in staff])

    def validate_contact(self, field) -> None:
        _check_id(field.data, "a parent or carer")

    def validate_pupil(self, field) -> None:
        _check_id(field.data, "a pupil")


def _check_id(value, what: str) -> None:
    if value and not (str(value).isdigit() and len(str(value)) <= 9):
        raise ValidationError(f"that is not {what}")


def id_or_none(value) -> int | None:
    return int(value) if value else None


class AuditSearchForm(DateRangeMixin, GetForm):
    action = SelectField("Action", choices=choices([("", "Any action")]), default="")
    actor = SelectField("Who", choices=choices([("", "Anyone")]), default="")
    date_from = DateField("From (date)", validators=[Optional()])
    date_to = DateField("To (date)", validators=[Optional()])

from __future__ import annotations

from flask_wtf.file import FileField, FileRequired
from sqlalchemy import select
from wtforms import DateTimeLocalField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from tripcomms.auth.models import Role, User, UserRole
from tripcomms.extensions import db
from tripcomms.forms import Form, MultiCheckboxField

LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]


def staff_choices() -> list[SelectChoice]:
    """Active users who can lead or accompany a trip (leaders and the head)."""
    users = db.session.scalars(
        select(User)
        .join(UserRole)
        .where(User.active.is_(True), UserRole.role.in_([Role.LEADER, Role.HEAD]))
        .order_by(User.name)
        .distinct()
    )
    return [SelectChoice(str(u.id), u.name) for u in users]


class TripForm(Form):
    title = StringField("Title", validators=[DataRequired(), Length(max=200)])
    destination = StringField("Destination", validators=[Optional(), Length(max=200)])
    starts_at = DateTimeLocalField(
        "Leaves (UK time)", format=LOCAL_FORMATS, validators=[InputRequired()]
    )
    ends_at = DateTimeLocalField(
        "Back (UK time)", format=LOCAL_FORMATS, validators=[InputRequired()]
    )
    leader_id = SelectField("Trip leader", validators=[DataRequired()])
    staff_ids = MultiCheckboxField("Accompanying staff")
    notes = TextAreaField("Notes for staff", validators=[Optional(), Length(max=5000)])

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        choices = staff_choices()
        self.leader_id.choices = [SelectChoice("", "Choose the leader"), *choices]
        self.staff_ids.choices = choices


class CancelTripForm(Form):
    reason = StringField("Why is the trip cancelled?", validators=[DataRequired(), Length(max=500)])


class RosterUploadForm(Form):
    roster = FileField(
        "Roster file (CSV)",
        validators=[FileRequired("Choose the roster file to upload")],
        description=(
            "One row per parent or carer. First line: pupil_first_name,pupil_last_name,"
            "year_group,contact_name,relationship,mobile (optional: image_restricted,"
            "no_contact,pupil_mobile). If any row is wrong, nothing is imported and every "
            "bad row is listed."
        ),
    )

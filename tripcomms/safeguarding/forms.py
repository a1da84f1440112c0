"""Forms for concerns and subject access."""

from __future__ import annotations

from wtforms import SearchField, SelectField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from tripcomms.audit.forms import choices
from tripcomms.forms import Form
from tripcomms.safeguarding.models import CATEGORY_LABELS, MAX_TEXT, OUTCOME_LABELS


class ConcernForm(Form):
    category = SelectField(
        "What kind of concern is it?",
        choices=choices(
            [("", "Choose one")] + [(c.value, lb) for c, lb in CATEGORY_LABELS.items()]
        ),
        validators=[DataRequired(message="choose what kind of concern this is")],
    )
    description = TextAreaField(
        "What happened?",
        validators=[DataRequired(message="describe what worries you"), Length(max=MAX_TEXT)],
        description="What you saw or were told, and when. The safeguarding lead reads this.",
    )


class ReasonForm(Form):
    reason = TextAreaField(
        "Why",
        validators=[DataRequired(message="say why, in a few words"), Length(max=MAX_TEXT)],
    )


class CloseForm(ReasonForm):
    outcome = SelectField(
        "Outcome",
        choices=choices([("", "Choose one")] + [(o.value, lb) for o, lb in OUTCOME_LABELS.items()]),
        validators=[DataRequired(message="choose an outcome")],
    )


class SubjectAccessForm(Form):
    class Meta:
        csrf = False

    q = SearchField(
        "Name or mobile number",
        validators=[Optional(), Length(max=100)],
        description="Part of a parent's or carer's name, or their number in any form",
    )

from __future__ import annotations

from wtforms import EmailField, PasswordField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length

from tripcomms.auth.models import ROLE_LABELS
from tripcomms.forms import Form, MultiCheckboxField

ROLE_CHOICES = [SelectChoice(role.value, label) for role, label in ROLE_LABELS.items()]


class LoginForm(Form):
    email = EmailField("Email", validators=[DataRequired(), Length(max=254)])
    password = PasswordField("Password", validators=[DataRequired(), Length(max=200)])


class UserForm(Form):
    name = StringField("Name", validators=[DataRequired(), Length(max=120)])
    email = EmailField("Email (used to sign in)", validators=[DataRequired(), Length(max=254)])
    roles = MultiCheckboxField("Roles", choices=ROLE_CHOICES)
    personal_numbers = TextAreaField(
        "Personal mobile numbers, one per line",
        description=(
            "Registered so that tripcomms can refuse to show them to parents (policy 50) and "
            "relay them only with the Headteacher's approval (policy 51)."
        ),
        validators=[Length(max=400)],
    )


class NewUserForm(UserForm):
    password = PasswordField("First password", validators=[DataRequired(), Length(max=200)])


class PasswordResetForm(Form):
    password = PasswordField("New password", validators=[DataRequired(), Length(max=200)])


class ChangePasswordForm(Form):
    current = PasswordField("Current password", validators=[DataRequired(), Length(max=200)])
    password = PasswordField("New password", validators=[DataRequired(), Length(max=200)])

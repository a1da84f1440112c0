"""Forms of the web inbox, broadcasts and message templates.

Lengths and emptiness are checked by the operations, not here, so that the person is told the
count ("the message is 2,000 characters; the limit is 1,600") in the same words as by SMS.
"""

from __future__ import annotations

import secrets

from wtforms import HiddenField, StringField, TextAreaField

from tripcomms.forms import Form


def new_form_key() -> str:
    """A one-time key for a sending form: a second click brings the same key back."""
    return secrets.token_urlsafe(24)


class ComposeForm(Form):
    body = TextAreaField("Your message")
    request_key = HiddenField()


class BroadcastForm(Form):
    body = TextAreaField("Message to every parent and carer on the trip")


class ConfirmBroadcastForm(Form):
    body = HiddenField()
    request_key = HiddenField()


class TemplateForm(Form):
    name = StringField("Name", description='What staff pick from the list, e.g. "Coach delayed".')
    body = TextAreaField(
        "Text",
        description="Put what the sender fills in as a word in curly brackets, such as "
        "{minutes}. It cannot be sent until it is filled in.",
    )

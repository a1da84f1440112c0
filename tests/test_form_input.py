"""What any form of the app does with characters nobody types: a NUL is kept as U+FFFD (as the
webhooks keep it), never handed to the database, where PostgreSQL refuses it and the request
failed with a 500."""

import pytest
from sqlalchemy import select

from tests.helpers import PASSWORD
from tripcomms.auth.views import BAD_LOGIN
from tripcomms.extensions import db
from tripcomms.phones.models import Phone
from tripcomms.relay.models import MessageTemplate


@pytest.fixture
def office_client(client, factory):
    client.login(factory.user("office", "admin").email)
    return client


def test_a_nul_in_a_new_phone_is_kept_as_a_replacement_character(app, office_client):
    response = office_client.post_form(
        "/phones/new", {"label": "Trip\x00phone", "number": "07400 123456", "serial": "\x00"}
    )
    assert response.status_code == 303
    with app.app_context():
        phone = db.session.scalar(select(Phone))
        assert (phone.label, phone.serial) == ("Trip\ufffdphone", "\ufffd")


def test_a_nul_in_a_template_is_kept_as_a_replacement_character(app, office_client):
    response = office_client.post_form(
        "/message-templates", {"name": "Late\x00", "body": "Back at\x00 {time}"}
    )
    assert response.status_code == 303
    with app.app_context():
        template = db.session.scalar(select(MessageTemplate))
        assert (template.name, template.body) == ("Late\ufffd", "Back at\ufffd {time}")


@pytest.mark.parametrize(
    ("url", "data"),
    [
        ("/admin/users/new", {"name": "N\x00", "email": "n\x00@school.test", "password": "x"}),
        ("/admin/numbers", {"number": "\x00"}),
        ("/phones/new", {"label": "A", "number": "07400\x00123456"}),
    ],
)
def test_a_nul_anywhere_is_a_form_error_at_worst(app, office_client, url, data):
    response = office_client.post_form(url, data)
    assert response.status_code in (200, 303, 422)


def test_a_nul_in_a_sign_in_is_a_failed_sign_in(app, client, factory):
    user = factory.user("office")
    response = client.login(user.email.replace("@", "\x00@"), PASSWORD + "\x00")
    assert response.status_code == 200
    assert BAD_LOGIN in response.get_data(as_text=True)
    assert client.login(user.email).status_code == 303

"""The office's message templates: add, edit, retire; offered when staff write to parents."""

import pytest
from sqlalchemy import select

from tripcomms.audit.models import AuditEvent
from tripcomms.extensions import db
from tripcomms.relay.models import MessageTemplate


@pytest.fixture
def office(client, factory):
    user = factory.user("office", name="Olive Office")
    client.login(user.email)
    return user


def add(client, name, body):
    return client.post_form("/message-templates", {"name": name, "body": body})


def templates(app):
    with app.app_context():
        rows = db.session.scalars(select(MessageTemplate).order_by(MessageTemplate.id)).all()
        return [(t.name, t.body, t.active) for t in rows]


def test_the_office_adds_edits_and_retires_a_template(client, app, office):
    response = add(client, "Coach delayed", "Coach delayed by {minutes} minutes")
    assert response.status_code == 303
    page = client.get("/message-templates").get_data(as_text=True)
    assert "Template &#39;Coach delayed&#39; added." in page
    assert "Coach delayed by {minutes} minutes" in page
    with app.app_context():
        template_id = db.session.scalar(select(MessageTemplate.id))

    response = client.post_form(
        f"/message-templates/{template_id}",
        {"name": "Coach late", "body": "The coach is about {minutes} minutes late."},
    )
    assert response.status_code == 303
    response = client.post_form(f"/message-templates/{template_id}/retire")
    assert response.status_code == 303
    assert templates(app) == [("Coach late", "The coach is about {minutes} minutes late.", False)]
    with app.app_context():
        actions = db.session.scalars(
            select(AuditEvent.action)
            .where(AuditEvent.action.like("template.%"))
            .order_by(AuditEvent.seq)
        ).all()
        assert actions == ["template.created", "template.updated", "template.retired"]


@pytest.mark.parametrize(
    ("name", "body", "error"),
    [
        ("", "Arrived safely", "give the template a name"),
        ("Arrived", "   ", "write the template&#39;s text"),
        ("Arrived", "z" * 2000, "the text is 2,000 characters; the limit is 1,600"),
        ("Late", "Late by {minutes minutes", "check the brackets"),
        ("Ring", "Ring 07400 000901 if lost", "a phone number that is not the school office"),
    ],
)
def test_a_bad_template_is_refused_with_a_reason(client, app, office, name, body, error):
    response = add(client, name, body)
    assert response.status_code == 422
    assert error in response.get_data(as_text=True)
    assert templates(app) == []


def test_two_templates_cannot_share_a_name(client, app, office):
    add(client, "Arrived", "Arrived safely")
    response = add(client, "arrived", "We have arrived")
    assert response.status_code == 422
    assert "there is already a template called &#39;Arrived&#39;" in response.get_data(as_text=True)


@pytest.mark.parametrize("name", ["Été", "İ", "ÖFFNUNG"])
def test_a_name_with_capitals_beyond_ascii_is_not_taken_twice(client, app, office, name):
    """SQLite's lower() changes ASCII letters only: the name was looked for as Python lowered
    it, not found, and the insert failed on the unique name with a 500."""
    add(client, name, "Arrived safely")
    response = add(client, name, "We have arrived")
    assert response.status_code == 422
    assert "there is already a template called" in response.get_data(as_text=True)
    assert len(templates(app)) == 1


def test_leaders_may_not_maintain_templates(client, factory):
    leader = factory.user("leader")
    client.login(leader.email)
    assert client.get("/message-templates").status_code == 403
    assert add(client, "Arrived", "Arrived safely").status_code == 403


def test_retired_templates_are_not_offered(client, app, office, factory):
    add(client, "Arrived", "Arrived safely")
    add(client, "Old", "Not any more")
    with app.app_context():
        old = db.session.scalar(select(MessageTemplate).where(MessageTemplate.name == "Old"))
        old_id = old.id
    client.post_form(f"/message-templates/{old_id}/retire")
    leader = factory.user("leader")
    trip = factory.trip(leader)
    other = app.test_client()
    other.login(leader.email)
    page = other.get(f"/trips/{trip}/broadcast").get_data(as_text=True)
    assert "Start from a template" in page or "has no trip number" in page
    page = other.get(f"/trips/{trip}/broadcast?template={old_id}").get_data(as_text=True)
    assert "Not any more" not in page

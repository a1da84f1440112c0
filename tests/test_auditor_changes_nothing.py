"""Auditors read and change nothing: every route that takes a change refuses them."""

from sqlalchemy import func, select

from tests.test_route_protection import sample_url
from tripcomms.audit.models import AuditEvent
from tripcomms.extensions import db

CHANGING_METHODS = {"POST", "PUT", "PATCH", "DELETE"}
# Signing out ends only the auditor's own session.
ALLOWED = {"auth.logout"}


def audit_events(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(AuditEvent))


def test_an_auditor_is_refused_by_every_route_that_changes_anything(app, client, factory):
    auditor = factory.user("auditor")
    assert client.login(auditor.email).status_code == 303
    before = audit_events(app)
    refused = []
    for rule in app.url_map.iter_rules():
        methods = sorted(rule.methods & CHANGING_METHODS)
        if not methods or rule.endpoint in ALLOWED:
            continue
        url = sample_url(rule)
        for method in methods:
            # A valid CSRF token, so that what answers is the role check, not the form's.
            response = client.open(url, method=method, data={"csrf_token": client.csrf_token()})
            assert response.status_code == 403, (
                f"{method} {url} ({rule.endpoint}) answered {response.status_code}"
            )
            refused.append(rule.endpoint)
    assert len(refused) >= 20
    assert {"safeguarding.close", "auth.change_password", "twilio.sms"} <= set(refused)
    assert audit_events(app) == before
    # Still signed in, and signing out works.
    assert client.get("/log").status_code == 200
    assert client.logout().status_code == 303


def test_a_user_with_another_role_besides_auditor_keeps_it(app, client, factory):
    both = factory.user("auditor", "dsl")
    client.login(both.email)
    response = client.post_form("/concerns/999/close", {"close-reason": "x"})
    assert response.status_code == 404  # past the guard, to the DSL's own checks

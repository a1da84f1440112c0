"""The audit trail page: the chain with filters, and a button that verifies it."""

import sqlalchemy as sa

from tests.audit.test_chain import triggers_dropped, write_events
from tripcomms.extensions import db
from tripcomms.types import utcnow

__all__ = ["triggers_dropped"]


def test_the_trail_filters_by_action_actor_and_date(app, client, factory):
    auditor = factory.user("auditor", name="Audrey Auditor")
    write_events(app, 3)
    client.login(auditor.email)
    page = client.get("/audit").get_data(as_text=True)
    assert "test.event" in page and "user.created" in page and "Verify the chain" in page
    only = client.get("/audit", query_string={"action": "test.event"}).get_data(as_text=True)
    assert only.count("<td>test.event</td>") == 3 and "<td>user.created</td>" not in only
    mine = client.get("/audit", query_string={"actor": f"user:{auditor.id}"})
    assert "<td>login.succeeded</td>" in mine.get_data(as_text=True)
    system = client.get("/audit", query_string={"actor": "system:system"}).get_data(as_text=True)
    assert system.count("<td>test.event</td>") == 3 and "<td>login.succeeded" not in system
    today = utcnow().date()
    past = client.get("/audit", query_string={"date_to": "2020-01-01"}).get_data(as_text=True)
    assert "No events match." in past
    current = client.get(
        "/audit", query_string={"date_from": today.isoformat(), "date_to": today.isoformat()}
    )
    assert "test.event" in current.get_data(as_text=True)
    for bad in ({"date_from": "nope"}, {"actor": "user:99999"}, {"action": "made.up"}):
        assert client.get("/audit", query_string=bad).status_code == 422, bad


def test_verify_says_the_chain_is_whole(app, client, factory):
    head = factory.user("head")
    write_events(app, 4)
    client.login(head.email)
    page = client.get("/audit/verify").get_data(as_text=True)
    assert "The chain is whole" in page and "events checked" in page


def test_verify_names_the_first_bad_event(app, client, factory, triggers_dropped):
    auditor = factory.user("auditor")
    write_events(app, 5)
    with app.app_context(), db.engine.begin() as conn:
        conn.execute(sa.text("UPDATE audit_events SET action = 'forged' WHERE seq = 3"))
    client.login(auditor.email)
    page = client.get("/audit/verify").get_data(as_text=True)
    assert "The chain is broken at event 3: its contents do not match its hash" in page


def test_only_the_head_and_auditors_see_the_trail(app, client, factory):
    for role, code in [("leader", 403), ("office", 403), ("dsl", 403), ("admin", 403)]:
        user = factory.user(role)
        client.logout()
        client.login(user.email)
        assert client.get("/audit").status_code == code, role
        assert client.get("/audit/verify").status_code == code, role

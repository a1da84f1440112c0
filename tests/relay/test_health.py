from datetime import timedelta

from sqlalchemy import update

from tests.relay.scenario import e164
from tripcomms.extensions import db
from tripcomms.relay.models import Message
from tripcomms.types import utcnow


def test_healthz_reports_database_sender_and_backlog(app, client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {
        "database": "ok",
        "oldest_pending_seconds": 0,
        "sender": "separate worker processes",
        "status": "ok",
    }


def test_healthz_fails_when_texts_wait_too_long(scenario, app):
    scenario.text(e164(1), "hello")
    with app.app_context():
        db.session.execute(update(Message).values(created_at=utcnow() - timedelta(minutes=10)))
        db.session.commit()
    response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.json["status"] == "failing"
    assert response.json["oldest_pending_seconds"] >= 600
    scenario.send_all()
    assert app.test_client().get("/healthz").status_code == 200


def test_healthz_says_nothing_personal(scenario, app):
    scenario.text(e164(1), "hello")
    body = app.test_client().get("/healthz").get_data(as_text=True)
    assert "+44" not in body and "hello" not in body

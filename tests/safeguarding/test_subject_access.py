"""Subject access: every message to and from one parent or carer, for the head and the DSL."""

import csv
import io

from sqlalchemy import select

from tests.record import ANN, MARY, SCHOOL_PHONE
from tripcomms.audit.models import AuditEvent
from tripcomms.extensions import db
from tripcomms.trips.models import Contact


def mary_id(rec) -> int:
    with rec.app.app_context():
        return db.session.scalar(select(Contact.id).where(Contact.mobile == MARY))


def test_every_message_to_and_from_one_contact(rec):
    rec.s.text(MARY, "Before the roster knew me", to="+441234000099")  # reached no trip
    rec.s.text(MARY, "Has the coach left?")
    rec.s.text(ANN, "Not Mary")
    rec.s.text(SCHOOL_PHONE, "#1 Yes")
    rec.s.text(SCHOOL_PHONE, "ALL Back at 15:30")
    client = rec.login(rec.dsl)
    found = client.get("/subject-access", query_string={"q": "07400 000001"})
    assert "Mary Jones" in found.get_data(as_text=True)
    assert "Mary Jones" in client.get("/subject-access?q=mary").get_data(as_text=True)
    response = client.get(f"/subject-access/{mary_id(rec)}.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert [(r["direction"], r["kind"], r["body"]) for r in rows] == [
        ("in", "no_trip", "Before the roster knew me"),
        ("out", "auto_reply", rows[1]["body"]),
        ("in", "from_contact", "Has the coach left?"),
        ("out", "to_contact", "Yes"),
        ("out", "broadcast", "Back at 15:30"),
    ]
    assert all(MARY in (r["from_number"], r["to_number"]) for r in rows)  # in full
    with rec.app.app_context():
        event = db.session.scalar(
            select(AuditEvent).where(AuditEvent.action == "contact.subject_access")
        )
        assert event.actor_id == rec.dsl.id and event.data == {"contact_id": mary_id(rec)}


def test_only_the_head_and_dsl_export_a_subject_access_request(rec):
    rec.s.text(MARY, "hello")
    for user in (rec.s.leader, rec.office, rec.auditor):
        client = rec.login(user)
        assert client.get(f"/subject-access/{mary_id(rec)}.csv").status_code == 403
        assert client.get("/subject-access?q=mary").status_code == 403
    client = rec.login(rec.head)
    assert client.get(f"/subject-access/{mary_id(rec)}.csv").status_code == 200
    assert client.get("/subject-access/999999.csv").status_code == 404
    for odd in ("%", "_", "'", '"', "((", "0" * 100):
        assert client.get("/subject-access", query_string={"q": odd}).status_code == 200

"""Migration 0012 with texts sent again in the database: at 0011 they are caused by the failed
text they repeat, as tripcomms wrote them then; up, they name it in retry_of and keep its
cause, as tripcomms writes them now; down again, as they were."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_migrate import downgrade, upgrade
from sqlalchemy import select

from tests.relay.scenario import SCHOOL_PHONE, e164
from tests.relay.test_migration_unknown_outcome import message_columns, text_index
from tripcomms.audit.models import AuditEvent
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.relay import operations as ops
from tripcomms.relay.models import Kind, Message
from tripcomms.trips.models import Trip

MARY, TOM, ANN = e164(1), e164(2), e164(3)


def links() -> dict[int, tuple[int | None, int | None]]:
    return {
        m.id: (m.caused_by_id, m.retry_of_id)
        for m in db.session.scalars(select(Message).order_by(Message.id))
    }


def old_links() -> dict[int, int | None]:
    """caused_by_id of every message, read without the model (at 0011 it has no retry_of)."""
    return dict(db.session.execute(sa.text("SELECT id, caused_by_id FROM messages")).all())


def one(scenario, **filters) -> Message:
    (message,) = scenario.outbound(**filters)
    return message


def test_texts_sent_again_move_from_caused_by_to_retry_of_and_back(scenario, app):
    # A #1 reply from a trip phone fails, is sent again, fails again, and is sent again.
    scenario.text(MARY, "Are we on time?")
    scenario.text(SCHOOL_PHONE, "#1 Yes, back at 15:30")
    command = next(m for m in scenario.inbound() if m.kind == Kind.COMMAND)
    scenario.send_all()
    reply = one(scenario, kind=Kind.TO_CONTACT)
    scenario.status(reply.twilio_sid, "undelivered", 30003)
    second = scenario.send_again(reply.id)
    scenario.send_all()
    scenario.status(one(scenario, id=second).twilio_sid, "failed", 30008)
    third = scenario.send_again(second)
    with app.app_context():
        leader = db.session.get(User, scenario.leader.id)
        trip = db.session.get(Trip, scenario.trip_id)
        # A text to everyone from the web that fails for Ann and is sent again.
        ops.broadcast(leader, trip, "Arrived safely", via="web")
        # A reply from the web that fails; sending it again is blocked, the office's number
        # having changed meanwhile.
        ops.send_to_contact(leader, trip, 2, "Ring the office on 01234 567890", via="web")
        db.session.commit()
    scenario.send_all()
    to_ann = one(scenario, kind=Kind.BROADCAST, to_number=ANN)
    scenario.status(to_ann.twilio_sid, "undelivered", 30003)
    to_tom = one(scenario, kind=Kind.TO_CONTACT, to_number=TOM)
    scenario.status(to_tom.twilio_sid, "failed", 30008)
    ann_again = scenario.send_again(to_ann.id)
    app.config["OFFICE_PHONE"] = "+441234567899"
    with app.app_context():
        with pytest.raises(ops.ContentBlocked):
            ops.retry_message(
                db.session.get(User, scenario.leader.id),
                db.session.get(Trip, scenario.trip_id),
                db.session.get(Message, to_tom.id),
            )
        db.session.commit()
    blocked = one(scenario, kind=Kind.TO_CONTACT, status="blocked").id

    with app.app_context():
        now = links()
        assert now[reply.id] == (command.id, None)
        assert now[second] == (command.id, reply.id)
        assert now[third] == (command.id, second)
        assert now[ann_again] == (None, to_ann.id)
        assert now[blocked] == (None, None)
        retried = {
            int(e.subject_id)
            for e in db.session.scalars(
                select(AuditEvent).where(AuditEvent.action == "message.retried")
            )
        }
        assert retried == {i for i, (_, retry_of) in now.items() if retry_of}
        # What tripcomms wrote before 0012: a text sent again, and a blocked attempt to send
        # one again, were caused by the failed text.
        before = {i: caused_by for i, (caused_by, _) in now.items()}
        before.update({second: reply.id, third: second, ann_again: to_ann.id, blocked: to_tom.id})
        made_by_hand = text_index()
        db.session.remove()
        try:
            downgrade(revision="0011_unknown_outcome")
            assert "retry_of_id" not in message_columns()
            assert text_index() == made_by_hand
            # Down, the texts sent again are caused by the failed text once more; a blocked
            # attempt keeps the cause it took, as nothing says which text it repeated.
            assert old_links() == {**before, blocked: None}
            db.session.execute(
                sa.text("UPDATE messages SET caused_by_id = :failed WHERE id = :blocked"),
                {"failed": to_tom.id, "blocked": blocked},
            )
            db.session.commit()
            assert old_links() == before
            db.session.remove()
        finally:
            upgrade()
        assert text_index() == made_by_hand
        assert links() == now
        db.session.remove()
        db.engine.dispose()

"""The relay scenario plus the people who read the record: head, DSL, auditor, office, and a
leader of another trip; helpers to age messages and to bulk-load many of them."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest
from sqlalchemy import insert, select

from tests.helpers import UserRef
from tests.relay.scenario import SCHOOL_PHONE, TRIP_NUMBER, Scenario, e164, scenario
from tripcomms.extensions import db
from tripcomms.relay.models import Direction, Kind, Message, Status
from tripcomms.types import utcnow

MARY, TOM, ANN = e164(1), e164(2), e164(3)
HEAD_PHONE = e164(800)
DSL_PHONE = e164(801)


@dataclass
class Record:
    s: Scenario
    head: UserRef
    dsl: UserRef
    auditor: UserRef
    office: UserRef
    other_leader: UserRef
    other_trip_id: int

    @property
    def app(self):
        return self.s.app

    @property
    def client(self):
        return self.s.client

    def login(self, user: UserRef):
        self.client.logout()
        response = self.client.login(user.email)
        assert response.status_code == 303, response.get_data(as_text=True)
        return self.client

    def messages(self, **filters) -> list[Message]:
        with self.app.app_context():
            query = select(Message).order_by(Message.id)
            for name, value in filters.items():
                query = query.where(getattr(Message, name) == value)
            rows = list(db.session.scalars(query))
            db.session.expunge_all()
            return rows

    def age(self, delta: timedelta, **filters) -> None:
        """Move messages (all, or those matching ``filters``) ``delta`` into the past."""
        with self.app.app_context():
            query = select(Message)
            for name, value in filters.items():
                query = query.where(getattr(Message, name) == value)
            for message in db.session.scalars(query):
                message.created_at = message.created_at - delta
            db.session.commit()


@pytest.fixture
def rec(scenario, factory, app) -> Record:
    head = factory.user("head", name="Helen Head", personal_numbers=(HEAD_PHONE,))
    dsl = factory.user("dsl", name="Dee Safeguarding", personal_numbers=(DSL_PHONE,))
    auditor = factory.user("auditor", name="Audrey Auditor")
    office = factory.user("office", name="Olive Office")
    other_leader = factory.user("leader", name="Otto Other")
    other_trip = factory.trip(other_leader, title="Farm visit")
    return Record(scenario, head, dsl, auditor, office, other_leader, other_trip)


def bulk_messages(
    app,
    count: int,
    *,
    trip_id: int | None,
    start: datetime | None = None,
    step: timedelta = timedelta(seconds=30),
    body=lambda i: f"message number {i} about the coach",
) -> None:
    """``count`` inbound messages inserted in bulk (core insert, not the ORM one by one)."""
    start = start or utcnow() - step * count
    rows = [
        {
            "created_at": start + step * i,
            "trip_id": trip_id,
            "direction": Direction.IN.value,
            "kind": Kind.FROM_UNKNOWN.value,
            "from_number": e164(500_000 + i % 1000),
            "to_number": TRIP_NUMBER,
            "body": body(i),
            "body_salt": secrets.token_hex(16),
            "num_media": 0,
            "media_types": [],
            "status": Status.RECEIVED.value,
            "error_message": "",
            "via": "sms",
            "note": "",
            "needs_review": False,
            "flagged": "",
            "attempts": 0,
        }
        for i in range(count)
    ]
    with app.app_context():
        for first in range(0, count, 5000):
            db.session.execute(insert(Message), rows[first : first + 5000])
        db.session.commit()


__all__ = [
    "ANN",
    "DSL_PHONE",
    "HEAD_PHONE",
    "MARY",
    "SCHOOL_PHONE",
    "TOM",
    "TRIP_NUMBER",
    "Record",
    "bulk_messages",
    "rec",
    "scenario",
]

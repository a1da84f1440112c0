"""A trip ready to relay: a number, a roster, staff phones; signed webhooks; a fake gateway."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from sqlalchemy import select
from twilio.request_validator import RequestValidator

from tests.helpers import FACTORY, UserRef
from tests.trips.rosters import mobile, roster_csv
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.mobile import normalise_number
from tripcomms.relay import numbers as number_ops
from tripcomms.relay.endpoints import PROVIDERS, Endpoint
from tripcomms.relay.gateway import ErrorKind, GatewayError, SendResult, SentMessage
from tripcomms.relay.models import Direction, Message, Status
from tripcomms.relay.operations import retry_message
from tripcomms.relay.outbox import OutboxSender
from tripcomms.trips import operations as trip_ops
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow

TRIP_NUMBER = "+441234000001"
SCHOOL_PHONE = "+447500000001"
SCHOOL_PHONE_2 = "+447500000002"


def e164(n: int) -> str:
    return normalise_number(mobile(n))


class LostAnswer(GatewayError):
    """A FakeGateway script entry: Twilio takes the text, then the answer never comes."""

    def __init__(self) -> None:
        super().__init__(ErrorKind.RETRYABLE, "Twilio did not answer in time", outcome_unknown=True)


class FakeGateway:
    """Records what would be sent; ``script`` lists errors for the next sends (a ``LostAnswer``
    sends the text and then raises), ``lookup_script`` errors for the next look-ups."""

    def __init__(self, first_sid: int = 1) -> None:
        self.sent: list[tuple[str, str, str, str | None]] = []
        self.script: list[GatewayError] = []
        self.lookups: list[tuple[str, str, str, datetime]] = []
        self.lookup_script: list[GatewayError] = []
        self._taken: list[tuple[tuple[str, str, str], SentMessage]] = []
        self._ids = itertools.count(first_sid)

    def send(self, to, from_, body, status_callback):
        error = self.script.pop(0) if self.script else None
        if error is not None and not isinstance(error, LostAnswer):
            raise error
        self.sent.append((to, from_, body, status_callback))
        result = SendResult(f"SM{next(self._ids):032x}", "queued")
        self._taken.append(((to, from_, body), SentMessage(result.sid, "queued", utcnow())))
        if error is not None:
            raise error
        return result

    def find_sent(self, to, from_, body, created_after):
        self.lookups.append((to, from_, body, created_after))
        if self.lookup_script:
            raise self.lookup_script.pop(0)
        return [
            m
            for key, m in self._taken
            if key == (to, from_, body) and m.date_created >= created_after
        ]

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return None


@dataclass
class Scenario:
    app: object
    client: object
    factory: object
    trip_id: int = 0
    leader: UserRef | None = None
    helper: UserRef | None = None
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    gateway: FakeGateway = field(default_factory=FakeGateway)

    # -- setting up ------------------------------------------------------------------------

    def give_phone(self, number: str, user: UserRef, label: str = "Trip phone") -> None:
        self.endpoints[number] = Endpoint(number, user.id, label)

    def take_phone(self, number: str) -> None:
        self.endpoints.pop(number, None)

    def import_roster(self, rows: list[str], header: str | None = None) -> None:
        data = roster_csv(rows, header) if header else roster_csv(rows)
        with self.app.app_context():
            trip_ops.import_roster(FACTORY, db.session.get(Trip, self.trip_id), data)
            db.session.commit()

    # -- texting ---------------------------------------------------------------------------

    def sign(self, path: str, params: dict) -> str:
        url = self.app.config["PUBLIC_BASE_URL"] + path
        return RequestValidator(self.app.config["TWILIO_AUTH_TOKEN"]).compute_signature(url, params)

    def post(self, path: str, params: dict, signature: str | None = None):
        headers = {"X-Twilio-Signature": signature or self.sign(path, params)}
        return self.client.post(path, data=params, headers=headers)

    def text(self, sender: str, body: str, *, to: str = TRIP_NUMBER, media=(), sid=None):
        params = {
            "MessageSid": sid or "SM" + secrets.token_hex(16),
            "AccountSid": self.app.config["TWILIO_ACCOUNT_SID"],
            "From": sender,
            "To": to,
            "Body": body,
            "NumMedia": str(len(media)),
        }
        for i, content_type in enumerate(media):
            params[f"MediaUrl{i}"] = f"https://api.twilio.com/media/ME{i}"
            params[f"MediaContentType{i}"] = content_type
        response = self.post("/twilio/sms", params)
        assert response.status_code == 200, response.get_data(as_text=True)
        return params["MessageSid"]

    def status(self, sid: str, status: str, error_code: int | None = None):
        params = {"MessageSid": sid, "MessageStatus": status}
        if error_code:
            params["ErrorCode"] = str(error_code)
        return self.post("/twilio/status", params)

    def send_all(self) -> int:
        """Run the outbox until nothing is due."""
        sender = OutboxSender(self.app, gateway=self.gateway)
        total = 0
        while handled := sender.run_once():
            total += handled
        return total

    def send_again(self, message_id: int) -> int:
        """Send a failed text to a parent again, as the trip's leader does from the inbox;
        returns the new message's id."""
        with self.app.app_context():
            again = retry_message(
                db.session.get(User, self.leader.id),
                db.session.get(Trip, self.trip_id),
                db.session.get(Message, message_id),
            )
            db.session.commit()
            return again.id

    # -- looking ---------------------------------------------------------------------------

    def outbound(self, **filters) -> list[Message]:
        with self.app.app_context():
            query = select(Message).where(Message.direction == Direction.OUT)
            for name, value in filters.items():
                query = query.where(getattr(Message, name) == value)
            rows = list(db.session.scalars(query.order_by(Message.id)))
            db.session.expunge_all()
            return rows

    def inbound(self) -> list[Message]:
        with self.app.app_context():
            rows = list(
                db.session.scalars(
                    select(Message).where(Message.direction == Direction.IN).order_by(Message.id)
                )
            )
            db.session.expunge_all()
            return rows

    def to(self, number: str) -> list[str]:
        """Bodies of what is (or will be) sent to ``number``; blocked messages never are."""
        return [m.body for m in self.outbound(to_number=number) if m.status != Status.BLOCKED]


def build_scenario(app, client, factory) -> Scenario:
    """The rows of the ``scenario`` fixture's trip, on the app's (empty) database; endpoints
    come from the Scenario's ``endpoints`` once a provider that reads them is registered."""
    leader = factory.user("leader", name="Liam Leader", personal_numbers=(mobile(900),))
    helper = factory.user("leader", name="Hana Helper")
    trip_id = factory.trip(leader, title="Science Museum", staff=(helper,))
    s = Scenario(app, client, factory, trip_id, leader, helper)
    with app.app_context():
        number_ops.add_number(FACTORY, TRIP_NUMBER)
        number_ops.allocate_number(FACTORY, db.session.get(Trip, trip_id))
        db.session.commit()
    s.import_roster(
        [
            f"Sam,Jones,Year 6,Mary Jones,mother,{mobile(1)}",
            f"Sam,Jones,Year 6,Tom Jones,father,{mobile(2)}",
            f"Ella,Smith,Year 5,Ann Smith,carer,{mobile(3)}",
        ]
    )
    s.give_phone(SCHOOL_PHONE, leader, "Trip phone 1")
    return s


@pytest.fixture
def scenario(app, client, factory, monkeypatch):
    """A trip in progress with number TRIP_NUMBER, a leader holding SCHOOL_PHONE, and a roster:
    #1 Mary Jones and #2 Tom Jones for Sam Jones, #3 Ann Smith for Ella Smith."""
    s = build_scenario(app, client, factory)

    def provider(trip, at):
        return list(s.endpoints.values()) if trip.id == s.trip_id else []

    monkeypatch.setattr("tripcomms.relay.endpoints.PROVIDERS", [*PROVIDERS, provider])
    return s


__all__ = [
    "ErrorKind",
    "FakeGateway",
    "GatewayError",
    "LostAnswer",
    "Scenario",
    "build_scenario",
    "e164",
    "scenario",
]

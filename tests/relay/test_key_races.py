"""A one-time key's form sent twice at the same moment answers as a second click does.

A second click processed after the first committed finds the key used and shows the first's
outcome. Here the two race instead: both pass the key check, and the first commits between
the second's check and its first write (``meanwhile``, at the trip number's look-up, which
each flow makes after its key check and before it writes anything). The unique key refuses
the second's write; it must then answer exactly as the sequential second click, with nothing
sent twice and never "try again".
"""

import pytest
from sqlalchemy import func, select

from tests.helpers import meanwhile
from tests.relay.scenario import e164
from tests.relay.test_broadcast_web import check, confirm, confirm_fields
from tests.relay.test_inbox import form_key, inbox_url, send
from tripcomms.audit.models import AuditEvent
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.relay import operations as ops
from tripcomms.relay.models import Broadcast, Kind, Message, SendKey
from tripcomms.trips.models import Trip

MARY, TOM, ANN = e164(1), e164(2), e164(3)


@pytest.fixture
def leader(scenario):
    scenario.client.login(scenario.leader.email)
    return scenario.leader


def flashes(client) -> list[tuple[str, str]]:
    """What the last response flashed (and is yet to show)."""
    with client.session_transaction() as session:
        return list(session.pop("_flashes", []))


def the_first_click(scenario, operation):
    """The same form's first request, saved and committed meanwhile by the same person."""

    def run():
        operation(db.session.get(User, scenario.leader.id), db.session.get(Trip, scenario.trip_id))

    return run


def raced(caplog) -> bool:
    """Whether the unique key refused a write (and the view logged it): the race happened."""
    return [r.levelname for r in caplog.records if r.name == "tripcomms.forms"] == ["WARNING"]


def audited(app, action: str) -> int:
    with app.app_context():
        query = select(func.count()).select_from(AuditEvent).where(AuditEvent.action == action)
        return db.session.scalar(query)


def test_a_reply_sent_twice_at_once_is_sent_once(scenario, leader, app, monkeypatch, caplog):
    client = scenario.client
    key = form_key(client.get(inbox_url(scenario, "/1")).get_data(as_text=True))
    first = the_first_click(
        scenario, lambda user, trip: ops.send_from_web(user, trip, 1, "Back at 4", request_key=key)
    )
    ran = meanwhile(monkeypatch, app, ops, "_proxy_or_conflict", first)
    racing = send(scenario, 1, "Back at 4", key)
    assert ran and raced(caplog)
    racing_flashes = flashes(client)
    sequential = send(scenario, 1, "Back at 4", key)  # a third click, after both

    (message,) = scenario.outbound(kind=Kind.TO_CONTACT)
    assert message.body == "Back at 4" and message.to_number == MARY
    assert racing.status_code == sequential.status_code == 303
    assert racing.location == sequential.location == inbox_url(scenario, "/1")
    assert racing_flashes == flashes(client)
    assert racing_flashes == [
        ("info", f"That was sent already (message {message.id}); not sent twice.")
    ]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SendKey)) == 1
    assert audited(app, "message.queued") == 1


def test_a_broadcast_confirmed_twice_at_once_is_sent_once(
    scenario, leader, app, monkeypatch, caplog
):
    client = scenario.client
    fields = confirm_fields(check(scenario, "Back at 4pm").get_data(as_text=True))
    first = the_first_click(
        scenario,
        lambda user, trip: ops.broadcast_from_web(
            user, trip, "Back at 4pm", request_key=fields["request_key"]
        ),
    )
    ran = meanwhile(monkeypatch, app, ops, "_proxy_or_conflict", first)
    racing = confirm(scenario, fields)
    assert ran and raced(caplog)
    racing_flashes = flashes(client)
    sequential = confirm(scenario, fields)

    with app.app_context():
        (broadcast_id,) = db.session.scalars(select(Broadcast.id))
    assert racing.status_code == sequential.status_code == 303
    assert racing.location == sequential.location
    assert racing.location == f"/trips/{scenario.trip_id}/broadcasts/{broadcast_id}"
    assert racing_flashes == flashes(client) == [("success", "Sent to 3.")]
    sent = scenario.outbound(kind=Kind.BROADCAST)
    assert sorted(m.to_number for m in sent) == sorted([MARY, TOM, ANN])
    assert {m.broadcast_id for m in sent} == {broadcast_id}
    assert audited(app, "broadcast.queued") == 1


def test_a_failed_text_sent_again_twice_at_once_goes_once(
    scenario, leader, app, monkeypatch, caplog
):
    client = scenario.client
    send(scenario, 3, "Ella is fine")
    scenario.send_all()
    (failed,) = scenario.outbound(kind=Kind.TO_CONTACT)
    scenario.status(failed.twilio_sid, "undelivered", 30003)
    flashes(client)

    def retry(user, trip):
        ops.retry_message(user, trip, db.session.get(Message, failed.id))

    ran = meanwhile(monkeypatch, app, ops, "_proxy_or_conflict", the_first_click(scenario, retry))
    url = f"/trips/{scenario.trip_id}/messages/{failed.id}/retry"
    racing = client.post_form(url)
    assert ran and raced(caplog)
    racing_flashes = flashes(client)
    sequential = client.post_form(url)

    assert racing.status_code == sequential.status_code == 303
    assert racing.location == sequential.location == inbox_url(scenario, "/3")
    assert racing_flashes == flashes(client)
    assert racing_flashes == [("error", "Not sent again: this text has already been sent again.")]
    to_ann = scenario.outbound(to_number=ANN)
    # The failed text, and it sent again once.
    assert [m.retry_of_id for m in to_ann] == [None, failed.id] and to_ann[0].id == failed.id
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(SendKey)) == 2  # send, retry
    assert audited(app, "message.retried") == 1

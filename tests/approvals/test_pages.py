"""The approval pages: asking, the queue, deciding, revoking, the trip panel, home sections,
who may see what, and the term report."""

import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.approvals.staff import HEAD_OWN, LEADER_OWN, local_time
from tests.helpers import FACTORY
from tripcomms.approvals.models import ApprovalState, PersonalPhoneApproval
from tripcomms.auth.models import StaffNumber
from tripcomms.extensions import db
from tripcomms.mobile import display_number
from tripcomms.phones import operations as phone_ops
from tripcomms.relay.numbers import relay_window
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow


def text(response) -> str:
    return response.get_data(as_text=True)


def shift(app, approval_id, **fields):
    with app.app_context():
        table = PersonalPhoneApproval.__table__
        db.session.execute(update(table).where(table.c.id == approval_id).values(**fields))
        db.session.commit()


def test_a_leader_asks_in_the_form(client, people, app):
    client.login(people.leader.email)
    page = text(client.get(f"/trips/{people.trip_id}"))
    assert "Ask to use my own phone" in page
    page = text(client.get(f"/trips/{people.trip_id}/personal-phone"))
    assert display_number(LEADER_OWN) in page
    assert "No school phone is free" in page
    with app.app_context():
        window = relay_window(db.session.get(Trip, people.trip_id))
        staff_number = db.session.scalar(
            select(StaffNumber).where(StaffNumber.number == LEADER_OWN)
        )
    form = {
        "number": staff_number.id,
        "reason": "Both school phones are with the other group",
        "starts_at": local_time(window.opens_at),
        "ends_at": local_time(window.closes_at),
        "send": "Ask the Headteacher",
    }
    response = client.post_form(f"/trips/{people.trip_id}/personal-phone", form)
    assert response.status_code == 303
    page = text(client.get(response.location))
    assert "Request 1 has gone to the Headteacher." in page
    assert "Waiting for the Headteacher" in page
    assert people.approval(1).state == ApprovalState.PENDING
    # The leader's home page and own list show it.
    assert "My personal-phone requests" in text(client.get("/"))
    assert "Request 1" in text(client.get("/approvals/mine"))


def test_the_form_shows_free_school_phones_and_refuses_a_window_outside_the_trip(
    client, people, app
):
    with app.app_context():
        phone_ops.add_phone(FACTORY, label="Trip phone 9", number="07400 999001")
        window = relay_window(db.session.get(Trip, people.trip_id))
        db.session.commit()
    client.login(people.leader.email)
    page = text(client.get(f"/trips/{people.trip_id}/personal-phone"))
    assert "1 school phone free" in page
    assert "Trip phone 9" in page
    response = client.post_form(
        f"/trips/{people.trip_id}/personal-phone",
        {
            "number": 1,
            "reason": "Signal",
            "starts_at": local_time(window.opens_at - timedelta(hours=3)),
            "ends_at": local_time(window.closes_at),
            "send": "Ask the Headteacher",
        },
    )
    assert response.status_code == 200
    assert "within the trip&#39;s relay window" in text(response)
    with app.app_context():
        assert db.session.scalar(select(PersonalPhoneApproval)) is None


def test_the_head_decides_on_the_web_and_revokes(client, people, app):
    approval_id = people.ask()
    client.login(people.head.email)
    home = text(client.get("/"))
    assert re.search(r'id="approvals-waiting">1 waiting', home)
    queue = text(client.get("/approvals"))
    assert "Both school phones are with the other group" in queue
    assert "no school phone free" in queue
    page = text(client.get(f"/approvals/{approval_id}/decide"))
    assert display_number(LEADER_OWN) in page  # the head sees the number
    response = client.post_form(
        f"/approvals/{approval_id}/approve", {"conditions": "Until the coach is back"}
    )
    assert response.status_code == 303
    assert "Approved: Liam Leader" in text(client.get(response.location))
    assert people.approval(approval_id).state == ApprovalState.APPROVED
    trip_page = text(client.get(f"/trips/{people.trip_id}"))
    assert f"Liam Leader's own phone ({display_number(LEADER_OWN)})" in trip_page

    # Deciding twice: the page says so and the form refuses.
    response = client.post_form(f"/approvals/{approval_id}/deny", {"reason": "No"})
    assert response.status_code == 303
    assert "Nothing changed: this request is already approved" in text(
        client.get(response.location)
    )
    assert "no longer waiting: it is approved" in text(
        client.get(f"/approvals/{approval_id}/decide")
    )

    response = client.post_form(f"/approvals/{approval_id}/revoke", {"reason": ""})
    assert "a reason is required" in text(client.get(response.location))
    response = client.post_form(f"/approvals/{approval_id}/revoke", {"reason": "Phone back"})
    assert "Revoked" in text(client.get(response.location))
    assert people.approval(approval_id).state == ApprovalState.REVOKED


def test_the_queue_lists_pending_oldest_first_with_their_age(client, people, app, factory):
    trip2 = factory.trip(people.helper, title="Farm")
    older = people.ask(
        people.helper, reason="Farm has no signal", trip_id=trip2, number="07400 000952"
    )
    newer = people.ask()
    shift(app, older, created_at=utcnow() - timedelta(hours=3, minutes=5))
    decided = people.ask(
        people.helper, reason="Other", trip_id=people.trip_id, number="07400 000952"
    )
    people.approve(decided)
    client.login(people.head.email)
    page = text(client.get("/approvals"))
    waiting = page.split('id="waiting-h"')[1].split('id="force-h"')[0]
    assert waiting.index("Farm has no signal") < waiting.index("Both school phones")
    assert "3 h 5 min" in waiting
    assert "Other" not in waiting
    assert f"Request {decided}" in page.split('id="recent-h"')[1]
    assert newer


def test_leaders_cannot_decide_or_see_others_requests(client, people, app, factory):
    approval_id = people.ask()
    client.login(people.helper.email)
    assert client.get(f"/approvals/{approval_id}/decide").status_code == 403
    assert client.post_form(f"/approvals/{approval_id}/approve").status_code == 403
    assert client.post_form(f"/approvals/{approval_id}/revoke", {"reason": "x"}).status_code == 403
    assert client.get("/approvals").status_code == 403
    assert client.get(f"/approvals/{approval_id}").status_code == 404  # not theirs
    assert client.get("/approvals/report").status_code == 403
    client.logout()
    client.login(people.leader.email)  # their own request: visible, not decidable
    assert client.get(f"/approvals/{approval_id}").status_code == 200
    assert client.get(f"/approvals/{approval_id}/decide").status_code == 403
    assert people.approval(approval_id).state == ApprovalState.PENDING
    # A leader may not ask on a trip they are not on.
    other = factory.trip(title="Zoo")
    assert client.get(f"/trips/{other}/personal-phone").status_code == 404


def test_a_head_cannot_decide_their_own_request_on_the_web(client, people, factory):
    trip = factory.trip(people.head, title="Zoo")
    approval_id = people.ask(people.head, HEAD_OWN, trip_id=trip)
    client.login(people.head.email)
    page = text(client.get(f"/approvals/{approval_id}/decide"))
    assert "another Headteacher must decide it" in page
    response = client.post_form(f"/approvals/{approval_id}/approve")
    assert response.status_code == 200
    assert "another Headteacher" in text(response)
    assert people.approval(approval_id).state == ApprovalState.PENDING


def test_the_trip_panel_masks_the_number_but_for_owner_and_head(client, people, app):
    approval_id = people.ask()
    people.approve(approval_id)
    masked = "•••" + LEADER_OWN[-3:]
    for who, sees in (
        (people.leader, True),
        (people.head, True),
        (people.helper, False),
        (people.office, False),
    ):
        client.login(who.email)
        page = text(client.get(f"/trips/{people.trip_id}"))
        assert "Liam Leader's own phone" in page, who.name
        assert (display_number(LEADER_OWN) in page) is sees, who.name
        assert (masked in page) is not sees, who.name
        client.logout()


def test_pages_write_down_ended_requests(client, people, app):
    approval_id = people.ask()
    shift(app, approval_id, ends_at=utcnow() - timedelta(minutes=1))
    client.login(people.leader.email)
    page = text(client.get("/approvals/mine"))
    assert "Ended" in page
    assert people.approval(approval_id).state == ApprovalState.EXPIRED
    assert people.actions() == ["approval.requested", "approval.expired"]


def test_the_term_report(client, people, app, factory):
    with app.app_context():
        phone_ops.add_phone(FACTORY, label="Trip phone 9", number="07400 999001")
        db.session.commit()
    first = people.ask()  # a school phone was free
    people.approve(first)
    shift(app, first, decided_at=utcnow() + timedelta(minutes=20))
    trip2 = factory.trip(people.helper, title="Farm")
    second = people.ask(people.helper, number="07400 000952", reason="Farm", trip_id=trip2)
    people.approve(second, by=people.deputy)
    shift(app, second, decided_at=utcnow() + timedelta(minutes=40))
    client.login(people.head.email)
    page = text(client.get("/approvals/report"))
    summary = page.split('id="report-summary"')[1].split("</dl>")[0]
    assert "<dt>Exceptions approved</dt><dd>2</dd>" in summary
    assert "<dt>Median time to decide</dt><dd>30 min</dd>" in summary
    assert "for 2 of 2 exceptions" in summary
    assert "Science Museum" in page and "Farm" in page
    assert "Dan Deputy" in page and "Helen Head" in page
    # A range with nothing in it.
    page = text(client.get("/approvals/report?first_day=2020-01-01&last_day=2020-02-01"))
    assert "No exception in this period." in page
    # Auditors read it too.
    auditor = factory.user("auditor")
    client.logout()
    client.login(auditor.email)
    assert client.get("/approvals/report").status_code == 200
    assert client.get(f"/approvals/{first}").status_code == 200


@pytest.mark.parametrize(
    "query",
    ["first_day=9999-12-31&last_day=9999-12-31", "first_day=0001-01-01", "last_day=1999-12-31"],
)
def test_the_report_refuses_days_beyond_the_records_years(client, people, query):
    """The last day of 9999 has no day after it: the report failed with a 500."""
    client.login(people.head.email)
    response = client.get(f"/approvals/report?{query}")
    assert response.status_code == 200
    assert "choose a date from 2000 to 2099" in text(response)


def test_checking_school_phones_saves_nothing(client, people, app, factory):
    other = factory.trip(title="Farm", starts_at=utcnow() + timedelta(hours=10))
    with app.app_context():
        phone = phone_ops.add_phone(FACTORY, label="Trip phone 9", number="07400 999001")
        phone_ops.book_phones(FACTORY, db.session.get(Trip, other), phones=[phone])
        db.session.commit()
    client.login(people.leader.email)
    # Over the whole relay window the phone is booked for the farm trip; today it is free.
    page = text(client.get(f"/trips/{people.trip_id}/personal-phone"))
    assert "No school phone is free" in page
    response = client.post_form(
        f"/trips/{people.trip_id}/personal-phone",
        {
            "number": 1,
            "reason": "",
            "starts_at": local_time(utcnow()),
            "ends_at": local_time(utcnow() + timedelta(hours=5)),
            "check": "y",
        },
    )
    assert response.status_code == 200
    assert "1 school phone free" in text(response)
    assert "Trip phone 9" in text(response)
    assert "is required" not in text(response)
    with app.app_context():
        assert db.session.scalar(select(PersonalPhoneApproval)) is None


def test_the_trip_report_lists_approvals_granted(client, people, app, factory):
    approval_id = people.ask()
    auditor = factory.user("auditor")
    client.login(auditor.email)
    report = text(client.get(f"/log/trips/{people.trip_id}/report"))
    assert "No personal-phone approvals are recorded for this trip." in report  # pending only
    people.approve(approval_id)
    people.revoke(approval_id)
    report = text(client.get(f"/log/trips/{people.trip_id}/report"))
    assert "Liam Leader (•••" + LEADER_OWN[-3:] + ")" in report  # masked for the auditor
    assert display_number(LEADER_OWN) not in report
    assert "Revoked" in report and "by Helen Head" in report
    client.logout()
    client.login(people.head.email)
    report = text(client.get(f"/log/trips/{people.trip_id}/report"))
    assert f"Liam Leader ({display_number(LEADER_OWN)})" in report

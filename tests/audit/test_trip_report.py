"""A trip's printable report: timeline, counts, reply times, concerns, phones, a chart."""

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.record import ANN, MARY, SCHOOL_PHONE, TOM
from tripcomms.audit import report
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.phones import operations as phone_ops
from tripcomms.relay.models import Direction, Message, Status
from tripcomms.trips.models import Trip


def busy_day(rec):
    s = rec.s
    s.text(MARY, "Has the coach left?")
    s.text(TOM, "Lunch?")
    rec.age(timedelta(minutes=12))
    s.text(SCHOOL_PHONE, "#1 Yes")  # 12 minutes for Mary
    s.text(SCHOOL_PHONE, "#3 call 07400 999999")  # blocked
    s.text(ANN, "Photo", media=("image/jpeg",))  # raises a concern
    s.send_all()
    reply = s.outbound(kind="to_contact")[0]
    s.status(reply.twilio_sid, "delivered")
    forward = s.outbound(kind="forward")[0]
    s.status(forward.twilio_sid, "undelivered", 30003)


def test_the_report_counts_times_and_lists_everything(rec):
    busy_day(rec)
    response = rec.login(rec.auditor).get(f"/log/trips/{rec.s.trip_id}/report")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    counts = dict(re.findall(r"<dt>(\w[\w ]*)</dt><dd>(\d+)</dd>", page))
    messages = rec.messages(trip_id=rec.s.trip_id)
    assert int(counts["Received"]) == sum(1 for m in messages if m.direction == Direction.IN)
    assert int(counts["Blocked"]) == 1 and int(counts["Delivered"]) == 1
    assert int(counts["Failed"]) == 1
    sent = sum(1 for m in messages if m.direction == Direction.OUT and m.status != Status.BLOCKED)
    assert int(counts["Sent"]) == sent
    assert (
        "Median time to the first staff reply to a parent's text: <strong>12 min</strong>" in page
    )
    assert "1 answered, 2 not answered" in page
    assert "Picture received (tripcomms (media))" in page
    assert "No personal-phone approvals are recorded for this trip." in page
    assert page.count("/log/messages/") >= len(messages)
    assert "<svg" in page and 'class="bar-in"' in page and "style=" not in page
    assert "Has the coach left?" in page
    for number in (MARY, ANN):
        assert number in page  # the auditor sees numbers in full


def test_the_report_shows_phones_issued_and_returned(rec, factory):
    with rec.app.app_context():
        office = db.session.get(User, rec.office.id)
        trip = db.session.get(Trip, rec.s.trip_id)
        leader = db.session.get(User, rec.s.leader.id)
        phone = phone_ops.add_phone(office, label="Trip phone 7", number="07500 000007")
        loan = phone_ops.issue_loan(office, phone, trip, leader)
        phone_ops.add_phone(office, label="Trip phone 8", number="07500 000008")
        db.session.commit()
        phone_ops.return_loan(office, loan, condition="ok")
        db.session.commit()
    page = rec.login(rec.head).get(f"/log/trips/{rec.s.trip_id}/report").get_data(as_text=True)
    assert "Trip phone 7" in page and "1 issued; 1 returned." in page


def test_leaders_see_their_own_trips_report_with_numbers_masked(rec):
    busy_day(rec)
    leader = rec.login(rec.s.leader)
    page = leader.get(f"/log/trips/{rec.s.trip_id}/report").get_data(as_text=True)
    assert "Has the coach left?" in page and MARY not in page
    assert leader.get(f"/log/trips/{rec.other_trip_id}/report").status_code == 404
    assert rec.login(rec.other_leader).get(f"/log/trips/{rec.s.trip_id}/report").status_code == 404
    assert rec.login(rec.office).get(f"/log/trips/{rec.s.trip_id}/report").status_code == 403
    assert rec.login(rec.dsl).get(f"/log/trips/{rec.s.trip_id}/report").status_code == 200


def test_the_report_prints(rec, repo_root):
    page = rec.login(rec.head).get(f"/log/trips/{rec.s.trip_id}/report").get_data(as_text=True)
    assert 'class="report"' in page and "No messages." in page
    css = (repo_root / "static" / "app.css").read_text()
    print_rules = css[css.rindex("@media print") :]
    assert ".no-print" in print_rules and ".report .panel" in print_rules


@pytest.fixture
def approvals_section():
    """What the approvals package will do: fill the report's approvals slot."""

    def context(trip, user):
        return {"approved": ["Liam Leader's own phone, 09:00 to 17:00"]}

    section = report.ReportSection(report.APPROVALS_SLOT, "audit/_test_section.html", context, 1)
    report.REPORT_SECTIONS.append(section)
    yield
    report.REPORT_SECTIONS.remove(section)


def test_another_package_fills_the_approvals_section(rec, approvals_section, tmp_path, app):
    from jinja2 import ChoiceLoader, DictLoader

    app.jinja_loader = ChoiceLoader(
        [
            DictLoader(
                {
                    "audit/_test_section.html": "{% for a in section.approved %}"
                    "<p>Approved: {{ a }}</p>{% endfor %}"
                }
            ),
            app.jinja_loader,
        ]
    )
    page = rec.login(rec.head).get(f"/log/trips/{rec.s.trip_id}/report").get_data(as_text=True)
    assert "Approved: Liam Leader&#39;s own phone, 09:00 to 17:00" in page
    assert "No personal-phone approvals are recorded" not in page


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 3, 28, hour, minute, tzinfo=UTC)


def test_the_chart_counts_messages_per_hour_across_the_clocks_changing():
    """29 March 2026: the clocks go forward at 01:00 UTC; every UTC hour is one bar."""
    messages = [
        Message(created_at=at(23, 10), direction=Direction.IN, status=Status.RECEIVED),
        Message(created_at=at(23, 50), direction=Direction.OUT, status=Status.DELIVERED),
        Message(created_at=at(23, 55), direction=Direction.OUT, status=Status.BLOCKED),
        Message(
            created_at=at(23) + timedelta(hours=3), direction=Direction.IN, status=Status.RECEIVED
        ),
    ]
    chart = report.hour_chart(messages, at(22), at(23) + timedelta(hours=4))
    assert [(h.strftime("%H"), r, s) for h, r, s in chart.hours] == [
        ("22", 0, 0),
        ("23", 1, 1),
        ("00", 0, 0),
        ("02", 0, 0),  # 01:00 UTC is 02:00 BST: the hour 01:00 never happened in London
        ("03", 1, 0),
        ("04", 0, 0),
    ]
    assert chart.peak == 1 and len(chart.bars) == 3
    assert {b.css for b in chart.bars} == {"bar-in", "bar-out"}
    assert all(0 <= b.y <= chart.plot_bottom and b.height > 0 for b in chart.bars)
    long = report.hour_chart(messages, at(0), at(0) + timedelta(days=30))
    assert long.cut and len(long.hours) == report.MAX_CHART_HOURS

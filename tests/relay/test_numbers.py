"""Trip numbers: one trip at a time, the cooldown, the exhausted pool, and their pages."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.helpers import FACTORY, local
from tripcomms.errors import Conflict
from tripcomms.extensions import db
from tripcomms.relay import numbers
from tripcomms.relay.models import NumberAllocation, ProxyNumber
from tripcomms.trips import operations as trip_ops
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow

A, B = "+441234000001", "+441234000002"


def add_numbers(app, *values):
    with app.app_context():
        for value in values:
            numbers.add_number(FACTORY, value)
        db.session.commit()


def allocate(app, trip_id) -> str:
    with app.app_context():
        proxy = numbers.allocate_number(FACTORY, db.session.get(Trip, trip_id))
        db.session.commit()
        return proxy.number


def day_trip(factory, leader, start: str) -> int:
    starts = local(start)
    return factory.trip(leader, starts_at=starts, ends_at=starts + timedelta(hours=8))


def test_a_number_serves_one_trip_at_a_time_and_rests_after(app, factory):
    add_numbers(app, A, B)
    leader = factory.user("leader")
    first = day_trip(factory, leader, "2030-03-04 09:00")
    same_day = day_trip(factory, leader, "2030-03-04 10:00")
    within_cooldown = day_trip(factory, leader, "2030-03-10 09:00")
    after_cooldown = day_trip(factory, leader, "2030-03-20 09:00")
    assert allocate(app, first) == A
    assert allocate(app, same_day) == B
    with app.app_context(), pytest.raises(Conflict, match="no trip number is free"):
        numbers.allocate_number(FACTORY, db.session.get(Trip, within_cooldown))
    # Both numbers rest until a week after their trips' windows close; then the least
    # recently used comes back first.
    assert allocate(app, after_cooldown) == A


def test_allocating_twice_or_for_a_cancelled_trip_is_refused(app, factory):
    add_numbers(app, A, B)
    trip = factory.trip()
    allocate(app, trip)
    with app.app_context(), pytest.raises(Conflict, match="already has a number"):
        numbers.allocate_number(FACTORY, db.session.get(Trip, trip))
    other = factory.trip()
    with app.app_context():
        trip_ops.cancel_trip(FACTORY, db.session.get(Trip, other), "snow")
        db.session.commit()
        with pytest.raises(Conflict, match="cancelled"):
            numbers.allocate_number(FACTORY, db.session.get(Trip, other))


def test_a_number_released_before_its_window_opened_is_free_again(app, factory):
    add_numbers(app, A)
    leader = factory.user("leader")
    first = day_trip(factory, leader, "2030-03-04 09:00")
    clash = day_trip(factory, leader, "2030-03-04 12:00")
    allocate(app, first)
    with app.app_context():
        numbers.release_number(FACTORY, db.session.get(Trip, first))
        db.session.commit()
    assert allocate(app, clash) == A


def test_routing_only_inside_the_window(app, factory):
    add_numbers(app, A)
    trip = factory.trip(starts_at=utcnow() + timedelta(hours=3))
    allocate(app, trip)
    with app.app_context():
        assert numbers.trip_for_number(A, utcnow()) is None  # opens 2 h before the start
        assert numbers.trip_for_number(A, utcnow() + timedelta(hours=1, minutes=1)).id == trip
        ends = db.session.get(Trip, trip).ends_at
        assert numbers.trip_for_number(A, ends + timedelta(hours=23)).id == trip
        assert numbers.trip_for_number(A, ends + timedelta(hours=24)) is None


def test_bad_numbers_are_refused(app):
    with app.app_context():
        with pytest.raises(Exception, match="is not a phone number"):
            numbers.add_number(FACTORY, "not a number")
        numbers.add_number(FACTORY, A)
        with pytest.raises(Conflict, match="already one of the school's trip numbers"):
            numbers.add_number(FACTORY, "01234 000001")


def test_trip_page_allocates_and_warns_when_the_pool_is_exhausted(app, client, factory):
    office = factory.user("office")
    client.login(office.email)
    trip = factory.trip()
    page = client.get(f"/trips/{trip}").get_data(as_text=True)
    assert "No trip number is free for these dates" in page
    assert "No trip number is free for" in client.get("/").get_data(as_text=True)
    add_numbers(app, A)
    response = client.post_form(f"/trips/{trip}/number", follow_redirects=True)
    page = response.get_data(as_text=True)
    assert "Trip number +441234000001 allocated" in page
    assert "01234 000001" in page
    assert "No trip number is free" not in client.get("/").get_data(as_text=True)
    leader = factory.user("leader")
    client.logout()
    client.login(leader.email)
    assert client.post_form(f"/trips/{trip}/number").status_code == 403


def test_number_admin_page_and_cli(app, client, factory, runner):
    admin = factory.user("admin")
    client.login(admin.email)
    response = client.post_form("/admin/numbers", {"number": "01234 000001"}, follow_redirects=True)
    assert "Added +441234000001" in response.get_data(as_text=True)
    response = client.post_form("/admin/numbers", {"number": "nonsense"})
    assert "is not a phone number" in response.get_data(as_text=True)
    result = runner.invoke(args=["numbers", "add", "01234 000002"])
    assert result.exit_code == 0 and result.output.strip().splitlines()[-1].isdigit()
    result = runner.invoke(args=["numbers", "add", "01234 000002"])
    assert result.exit_code == 1 and "already one of the school's trip numbers" in result.output
    result = runner.invoke(args=["numbers", "list"])
    assert "+441234000001  unused" in result.output
    with app.app_context():
        assert db.session.scalar(select(NumberAllocation)) is None
        assert len(db.session.scalars(select(ProxyNumber)).all()) == 2

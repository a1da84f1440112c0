"""Fixtures for the phone pool: phones, bookings and loans made through the operations."""

from __future__ import annotations

import itertools
from datetime import datetime

import pytest

from tests.helpers import FACTORY
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.phones import operations as ops
from tripcomms.phones.models import Phone
from tripcomms.trips.models import Trip


# Valid UK mobile numbers (07400 9xxxxx passes phonenumbers.is_valid_number; Ofcom's drama
# range 07700 900xxx fails). Tests that spell a number out use 07400 123xxx, so never these.
def _mobiles():
    return (f"+4474009{n:05d}" for n in itertools.count(1))


class Pool:
    """Rows of the phone pool, each made and committed through an operation."""

    def __init__(self, app) -> None:
        self.app = app
        self._labels = itertools.count(1)
        self._numbers = _mobiles()

    def phone(
        self, label: str | None = None, *, number: str | None = None, serial: str = ""
    ) -> int:
        with self.app.app_context():
            phone = ops.add_phone(
                FACTORY,
                label=label or f"Trip phone {next(self._labels)}",
                number=number or next(self._numbers),
                serial=serial,
            )
            db.session.commit()
            return phone.id

    def issue(
        self, phone_id: int, trip_id: int, holder_id: int, *, due_at: datetime | None = None
    ) -> int:
        with self.app.app_context():
            loan = ops.issue_loan(
                FACTORY,
                db.session.get(Phone, phone_id),
                db.session.get(Trip, trip_id),
                db.session.get(User, holder_id),
                due_at=due_at,
            )
            db.session.commit()
            return loan.id

    def book(self, trip_id: int, *phone_ids: int, count: int | None = None, **period) -> list[int]:
        with self.app.app_context():
            bookings = ops.book_phones(
                FACTORY,
                db.session.get(Trip, trip_id),
                count=count,
                phones=[db.session.get(Phone, i) for i in phone_ids],
                **period,
            )
            db.session.commit()
            return [b.id for b in bookings]


@pytest.fixture
def pool(app) -> Pool:
    return Pool(app)


@pytest.fixture
def office(factory):
    return factory.user("office", name="Olive Office", email="olive@school.test")


@pytest.fixture
def office_client(client, office):
    client.login(office.email)
    return client


def count(app, model) -> int:
    from sqlalchemy import func, select

    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def last_event(app):
    from sqlalchemy import select

    from tripcomms.audit.models import AuditEvent

    with app.app_context():
        return db.session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1))


def future_local(days: int, hm: str = "09:00", *, weekday: int | None = None) -> tuple[str, str]:
    """A London day some way ahead ("YYYY-MM-DD HH:MM") and how the pages write that day
    ("Mon 3 Mar"), optionally moved on to a given weekday (0 is Monday)."""
    from datetime import timedelta

    from tripcomms.localtime import LONDON

    day = datetime.now(LONDON).date() + timedelta(days=days)
    if weekday is not None:
        day += timedelta(days=(weekday - day.weekday()) % 7)
    return f"{day.isoformat()} {hm}", f"{day:%a} {day.day} {day:%b}"

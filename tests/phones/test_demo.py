"""Demo phones: six valid mobiles, two on loan to the trip in progress."""

from datetime import timedelta

import phonenumbers
from sqlalchemy import select

from tripcomms.audit.operations import SystemActor
from tripcomms.extensions import db
from tripcomms.phones.demo import DEMO_PHONES, seed_demo_phones
from tripcomms.phones.models import Booking, Loan, PhoneStatus
from tripcomms.phones.queries import school_phone_numbers_on_loan
from tripcomms.trips.models import Trip
from tripcomms.types import utcnow


def test_demo_numbers_are_valid_uk_mobiles():
    for _label, number, _serial in DEMO_PHONES:
        parsed = phonenumbers.parse(number, "GB")
        assert phonenumbers.is_valid_number(parsed), number
        assert phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE


def test_seed_demo_phones(app, factory):
    leader = factory.user("leader", name="Liam Leader")
    teacher = factory.user("leader", name="Tara Teacher")
    running = factory.trip(leader, title="Year 6 Museum", staff=(teacher,))
    planned = factory.trip(
        teacher,
        title="Year 5 Zoo",
        starts_at=utcnow() + timedelta(days=7),
        ends_at=utcnow() + timedelta(days=7, hours=8),
    )
    with app.app_context():
        trips = db.session.scalars(select(Trip).order_by(Trip.id)).all()
        phones = seed_demo_phones(SystemActor("demo"), trips)
        db.session.commit()
        assert len(phones) == 6
        loans = db.session.scalars(select(Loan).order_by(Loan.id)).all()
        assert [(x.trip_id, x.holder.name) for x in loans] == [
            (running, "Liam Leader"),
            (running, "Tara Teacher"),
        ]
        assert [p.status for p in phones].count(PhoneStatus.ON_LOAN) == 2
        assert len(school_phone_numbers_on_loan(running, utcnow())) == 2
        [booking] = db.session.scalars(select(Booking)).all()
        assert booking.trip_id == planned

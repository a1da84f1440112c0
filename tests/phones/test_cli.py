"""`phones add`, `loans issue` and `loans return` (import and overdue have their own tests)."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.helpers import local
from tests.phones.conftest import count, future_local
from tripcomms.extensions import db
from tripcomms.phones.models import Loan, Phone, PhoneStatus
from tripcomms.trips.models import Trip


def test_phones_add(app, runner):
    result = runner.invoke(
        args=[
            "phones",
            "add",
            "--label",
            "Trip phone 1",
            "--number",
            "07400 123401",
            "--serial",
            "S1",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        phone = db.session.scalar(select(Phone))
        assert result.output.strip().splitlines()[-1] == str(phone.id)
        assert (phone.label, phone.number, phone.serial) == ("Trip phone 1", "+447400123401", "S1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--label", "A", "--number", "01234 567890"],
            "Error: '01234 567890' is not a mobile number",
        ),
        (["--label", "A", "--number", "07700 900123"], "is not a valid phone number"),
        (
            ["--label", "x" * 61, "--number", "07400123401"],
            "Error: a label is at most 60 characters",
        ),
        (["--label", "A"], "Missing option '--number'"),
    ],
)
def test_phones_add_bad_input(app, runner, args, message):
    result = runner.invoke(args=["phones", "add", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert count(app, Phone) == 0


@pytest.fixture
def museum(factory, pool):
    leader = factory.user("leader", name="Liam Leader", email="liam@school.test")
    trip = factory.trip(leader, title="Year 6 Museum")
    pool.phone("Trip phone 3", number="+447400123403")
    return trip


def test_loans_issue_and_return(app, runner, museum):
    due, _ = future_local(1, "17:30")
    result = runner.invoke(
        args=[
            "loans",
            "issue",
            "--phone",
            "trip phone 3",
            "--trip",
            str(museum),
            "--to",
            "Liam@School.test",
            "--due",
            due,
        ]
    )
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    with app.app_context():
        loan = db.session.scalar(select(Loan))
        assert lines[-1] == str(loan.id)
        assert lines[0].startswith("issued Trip phone 3 to Liam Leader for Year 6 Museum, due back")
        assert loan.due_at == local(due)
        assert loan.issued_by_id is None  # the command line is a system actor

    result = runner.invoke(
        args=["loans", "return", "--phone", "07400 123403", "--condition", "damaged"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "Trip phone 3 returned from Liam Leader (damaged); it is now repair"
    )
    with app.app_context():
        loan = db.session.scalar(select(Loan))
        assert loan.return_condition.value == "damaged"
        assert loan.charger_returned is None and loan.texts_deleted is None  # not asked
        assert loan.phone.status == PhoneStatus.REPAIR

    result = runner.invoke(args=["loans", "return", "--phone", "Trip phone 3"])
    assert result.exit_code == 1
    assert result.output.startswith("Error: Trip phone 3 is not on loan; it was returned on")
    assert len(result.output.strip().splitlines()) == 1


def test_loans_issue_default_due_time(app, runner, museum):
    result = runner.invoke(
        args=[
            "loans",
            "issue",
            "--phone",
            "Trip phone 3",
            "--trip",
            str(museum),
            "--to",
            "liam@school.test",
        ]
    )
    assert result.exit_code == 0, result.output
    with app.app_context():
        loan = db.session.scalar(select(Loan))
        assert loan.due_at == db.session.get(Trip, museum).ends_at + timedelta(hours=12)


@pytest.mark.parametrize(
    ("phone", "trip", "to", "due", "message"),
    [
        (
            "Trip phone 9",
            None,
            "liam@school.test",
            None,
            "there is no school phone called or numbered 'Trip phone 9'",
        ),
        ("Trip phone 3", 999, "liam@school.test", None, "there is no trip 999"),
        (
            "Trip phone 3",
            None,
            "nobody@school.test",
            None,
            "no active staff account for nobody@school.test",
        ),
        (
            "Trip phone 3",
            None,
            "other@school.test",
            None,
            "Other Person is not the leader or accompanying staff",
        ),
        (
            "Trip phone 3",
            None,
            "liam@school.test",
            "tomorrow",
            "--due must look like 2026-03-14 09:30",
        ),
        (
            "Trip phone 3",
            None,
            "liam@school.test",
            "2020-01-01 09:00",
            "the due-back time must be in the future",
        ),
    ],
)
def test_loans_issue_bad_input(app, runner, factory, museum, phone, trip, to, due, message):
    factory.user("leader", name="Other Person", email="other@school.test")
    args = ["loans", "issue", "--phone", phone, "--trip", str(trip or museum), "--to", to]
    if due:
        args += ["--due", due]
    result = runner.invoke(args=args)
    assert result.exit_code == 1
    assert result.output.strip() == f"Error: {message}" or message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert count(app, Loan) == 0


def test_loans_issue_an_issued_phone(app, runner, museum, factory):
    base = ["loans", "issue", "--phone", "Trip phone 3", "--trip", str(museum)]
    assert runner.invoke(args=[*base, "--to", "liam@school.test"]).exit_code == 0
    result = runner.invoke(args=[*base, "--to", "liam@school.test"])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: Trip phone 3 is already on loan to Liam Leader for Year 6 Museum"
    )


def test_loans_return_bad_input(app, runner, museum):
    result = runner.invoke(args=["loans", "return", "--phone", "Trip phone 3"])
    assert result.exit_code == 1
    assert result.output.strip() == "Error: Trip phone 3 is not on loan"
    result = runner.invoke(
        args=["loans", "return", "--phone", "Trip phone 3", "--condition", "wet"]
    )
    assert result.exit_code == 2
    assert "Invalid value for '--condition'" in result.output

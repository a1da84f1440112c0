import pytest
from sqlalchemy import func, select

from tests.trips.rosters import HEADER, big_roster, mobile, roster_csv
from tripcomms.audit.models import AuditEvent
from tripcomms.audit.operations import SYSTEM
from tripcomms.csvfiles import ImportRejected
from tripcomms.errors import InvalidInput
from tripcomms.extensions import db
from tripcomms.trips import operations as ops
from tripcomms.trips.models import Contact, ContactLink, Pupil, Trip, TripContact, TripPupil

BASIC = roster_csv(
    [
        f"Sam,Jones,Year 6,Mary Jones,mother,{mobile(1)}",
        f"Sam,Jones,Year 6,Tom Jones,father,{mobile(2)}",
        f"Ella,Smith,Year 5,Ann Smith,carer,{mobile(3)}",
    ]
)


def import_file(app, trip_id: int, data: bytes) -> ops.ImportReport:
    with app.app_context():
        trip = db.session.get(Trip, trip_id)
        report = ops.import_roster(SYSTEM, trip, data)
        db.session.commit()
        return report


def counts(app) -> dict[str, int]:
    with app.app_context():
        return {
            model.__name__: db.session.scalar(select(func.count()).select_from(model))
            for model in (Pupil, Contact, ContactLink, TripPupil, TripContact, AuditEvent)
        }


def codes(app, trip_id) -> dict[str, tuple[int, bool]]:
    with app.app_context():
        rows = db.session.execute(
            select(Contact.name, TripContact.code, TripContact.active)
            .join(TripContact.contact)
            .where(TripContact.trip_id == trip_id)
        )
        return {name: (code, active) for name, code, active in rows}


def test_import_creates_pupils_contacts_and_codes(app, factory):
    trip = factory.trip()
    report = import_file(app, trip, BASIC)
    assert (report.pupils_added, report.contacts_added) == (2, 3)
    assert codes(app, trip) == {
        "Mary Jones": (1, True),
        "Tom Jones": (2, True),
        "Ann Smith": (3, True),
    }
    with app.app_context():
        mary = db.session.scalar(select(Contact).where(Contact.name == "Mary Jones"))
        assert mary.mobile == "+447400000001"
        event = db.session.scalar(select(AuditEvent).order_by(AuditEvent.seq.desc()))
        assert event.action == "roster.imported"
        assert event.data["contacts_added"] == 3
        assert "+447400000001" not in str(event.data)


def test_same_file_again_changes_nothing(app, factory):
    trip = factory.trip()
    import_file(app, trip, BASIC)
    before = counts(app)
    report = import_file(app, trip, BASIC)
    assert not report.changed
    assert report.summary() == "3 rows read; nothing changed"
    after = counts(app)
    assert {k: v for k, v in after.items() if k != "AuditEvent"} == {
        k: v for k, v in before.items() if k != "AuditEvent"
    }
    assert codes(app, trip)["Ann Smith"] == (3, True)


def test_changed_file_updates_and_reports(app, factory):
    trip = factory.trip()
    import_file(app, trip, BASIC)
    changed = roster_csv(
        [
            f"Sam,Jones,Year 6,Mary Jones-Smith,mother,{mobile(1)}",  # renamed
            f"Ben,Khan,Year 6,Raj Khan,father,{mobile(4)}",  # new pupil
            # Ella Smith and Tom Jones are gone
        ]
    )
    report = import_file(app, trip, changed)
    assert report.pupils_added == 1
    assert report.pupils_removed == 1
    assert report.contacts_added == 1
    assert report.contacts_removed == 2
    assert report.contacts_updated == 1
    assert "Renamed contact Mary Jones to Mary Jones-Smith" in report.changes
    assert codes(app, trip) == {
        "Mary Jones-Smith": (1, True),
        "Tom Jones": (2, False),
        "Ann Smith": (3, False),
        "Raj Khan": (4, True),
    }
    # Back again: the old code comes back, never a new one.
    import_file(app, trip, BASIC)
    assert codes(app, trip)["Tom Jones"] == (2, True)


def test_parent_of_two_pupils_is_one_contact_with_one_code(app, factory):
    trip = factory.trip()
    import_file(
        app,
        trip,
        roster_csv(
            [
                f"Sam,Jones,Year 6,Mary Jones,mother,{mobile(1)}",
                f"Lily,Jones,Year 4,Mary Jones,mother,{mobile(1)}",
            ]
        ),
    )
    assert codes(app, trip) == {"Mary Jones": (1, True)}
    assert counts(app)["ContactLink"] == 2


def test_contacts_are_shared_between_trips_with_their_own_codes(app, factory):
    trip_a, trip_b = factory.trip(), factory.trip()
    import_file(app, trip_a, BASIC)
    import_file(app, trip_b, roster_csv([f"Ella,Smith,Year 5,Ann Smith,carer,{mobile(3)}"]))
    assert counts(app)["Contact"] == 3
    assert codes(app, trip_b) == {"Ann Smith": (1, True)}


def test_optional_columns(app, factory):
    trip = factory.trip()
    data = roster_csv(
        [f"Sam,Jones,6,Mary Jones,mother,{mobile(1)},yes,no,{mobile(9)}"],
        header=HEADER + ",image_restricted,no_contact,pupil_mobile",
    )
    import_file(app, trip, data)
    with app.app_context():
        sam = db.session.scalar(select(Pupil))
        assert sam.image_restricted is True
        assert sam.own_mobile == "+447400000009"


@pytest.mark.parametrize(
    "written", ["07400 000001", "+44 7400 000001", "(07400) 000-001", "+447400000001"]
)
def test_numbers_in_any_common_form_are_stored_as_e164(app, factory, written):
    trip = factory.trip()
    import_file(app, trip, roster_csv([f'Sam,Jones,6,Mary Jones,mother,"{written}"']))
    with app.app_context():
        assert db.session.scalar(select(Contact.mobile)) == "+447400000001"


def rejected(app, trip, data) -> list[str]:
    before = counts(app)
    with app.app_context(), pytest.raises(ImportRejected) as info:
        ops.import_roster(SYSTEM, db.session.get(Trip, trip), data)
    assert counts(app) == before
    return [str(e) for e in info.value.errors]


def test_bad_rows_reject_the_whole_file_naming_each(app, factory):
    trip = factory.trip()
    data = roster_csv(
        [
            f"Sam,Jones,6,Mary Jones,mother,{mobile(1)}",
            "Ella,Smith,5,Ann Smith,carer,01234 567890",
            f",Smith,5,Ann Smith,carer,{mobile(3)}",
            f"Sam,Jones,6,Mary Jones,mother,{mobile(1)}",
            f"Ben,Khan,6,Raj Khan,father,{mobile(4)},maybe",
        ],
        header=HEADER + ",image_restricted",
    )
    errors = rejected(app, trip, data)
    assert errors == [
        "row 3: mobile: '01234 567890' is not a mobile number",
        "row 4: the pupil's first name is missing",
        "row 5: duplicate contact: 07400 000001 is already given for Sam Jones on row 2",
        "row 6: image_restricted must be yes or no, not 'maybe'",
    ]


def test_staff_and_pupil_numbers_are_refused_as_contacts(app, factory):
    factory.user("leader", personal_numbers=(mobile(50),))
    trip = factory.trip()
    data = roster_csv(
        [
            f"Sam,Jones,6,Mary Jones,mother,{mobile(50)},",
            f"Ella,Smith,5,Ann Smith,carer,{mobile(60)},",
            f"Ben,Khan,6,Raj Khan,father,{mobile(3)},{mobile(60)}",
        ],
        header=HEADER + ",pupil_mobile",
    )
    errors = rejected(app, trip, data)
    assert errors == [
        "row 2: the contact's mobile is a staff member's personal number (policy 50)",
        "row 3: the contact's mobile is Ben Khan's own number; staff never text pupils (policy 28)",
    ]


def test_one_number_for_two_different_names_is_refused(app, factory):
    trip = factory.trip()
    data = roster_csv(
        [
            f"Sam,Jones,6,Mary Jones,mother,{mobile(1)}",
            f"Ella,Smith,5,Ann Smith,carer,{mobile(1)}",
        ]
    )
    assert rejected(app, trip, data) == [
        "row 3: 07400 000001 is given for Ann Smith here and for Mary Jones on row 2; "
        "one number is one person"
    ]


def test_a_2000_row_roster_with_one_bad_number_names_that_row(app, factory):
    trip = factory.trip()
    good = big_roster(1000).decode().splitlines()
    good[1234] = good[1234].rsplit(",", 1)[0] + ",07400 12345"  # one digit short
    errors = rejected(app, trip, ("\n".join(good) + "\n").encode())
    assert errors == ["row 1235: mobile: '07400 12345' is not a valid phone number"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 20_000, "not a CSV text file"),
        # A NUL past the first 64 kB was not looked for: the name reached the database, and
        # PostgreSQL, which cannot store NUL, failed the import with a 500.
        (big_roster(1000).replace(b"Parent1 Family999", b"Parent1\x00Family999"), "not a CSV"),
        ("naïve".encode("latin-1") + b"\n", "not UTF-8 text"),
        (b"", "that file is empty"),
        (b"name,phone\nA,B\n", "the header is missing pupil_first_name"),
        ((HEADER + ",shoe_size\n").encode(), "unknown column shoe_size"),
    ],
)
def test_unreadable_files_get_a_clear_message(app, factory, data, message):
    trip = factory.trip()
    before = counts(app)
    with app.app_context(), pytest.raises(InvalidInput, match=message):
        ops.import_roster(SYSTEM, db.session.get(Trip, trip), data)
    assert counts(app) == before


def test_byte_order_mark_and_windows_line_endings_are_accepted(app, factory):
    trip = factory.trip()
    data = b"\xef\xbb\xbf" + roster_csv(
        [f"Sam,Jones,6,Mary Jones,mother,{mobile(1)}"], newline="\r\n"
    )
    report = import_file(app, trip, data)
    assert report.contacts_added == 1


def test_a_cancelled_trip_takes_no_roster(app, factory):
    trip = factory.trip()
    with app.app_context():
        ops.cancel_trip(SYSTEM, db.session.get(Trip, trip), "coach broke down")
        db.session.commit()
    with app.app_context(), pytest.raises(ops.Conflict, match="cancelled"):
        ops.import_roster(SYSTEM, db.session.get(Trip, trip), BASIC)


def test_a_school_phone_number_is_refused_as_a_contact(app, factory):
    from tripcomms.phones import operations as phone_ops

    trip = factory.trip()
    with app.app_context():
        phone_ops.add_phone(SYSTEM, label="Trip phone 1", number=mobile(77))
        db.session.commit()
    errors = rejected(app, trip, roster_csv([f"Sam,Jones,6,Mary Jones,mother,{mobile(77)}"]))
    assert errors == ["row 2: the contact's mobile is a school phone's own number (policy 45, 50)"]

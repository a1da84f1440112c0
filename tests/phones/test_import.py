"""Importing phones from a CSV file: all or nothing, with a report by row."""

import io
import os

import pytest
from sqlalchemy import select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from tests.helpers import FACTORY
from tests.phones.conftest import count
from tripcomms.audit.models import AuditEvent
from tripcomms.extensions import db
from tripcomms.phones import operations as ops
from tripcomms.phones.models import Phone

GOOD = (
    "label,number,serial\n"
    "Trip phone 1,07400 123401,356938035643801\n"
    "Trip phone 2,+44 7400 123402,\n"
)


def upload(client, data: bytes | None, name: str = "phones.csv"):
    """POST the import form as a browser would. The body is encoded in memory: the test
    client would spool a large upload to a temporary file that nothing closes."""
    values = {"csrf_token": client.csrf_token()}
    if data is not None:
        values["file"] = FileStorage(io.BytesIO(data), filename=name)
    boundary, body = encode_multipart(values)
    return client.post(
        "/phones/import", data=body, content_type=f"multipart/form-data; boundary={boundary}"
    )


def test_upload_with_byte_order_mark_and_windows_line_endings(app, office_client, office):
    data = b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode()
    response = upload(office_client, data)
    assert response.status_code == 303
    with app.app_context():
        phones = db.session.scalars(select(Phone).order_by(Phone.label)).all()
        assert [(p.label, p.number, p.serial) for p in phones] == [
            ("Trip phone 1", "+447400123401", "356938035643801"),
            ("Trip phone 2", "+447400123402", ""),
        ]
        actions = db.session.scalars(
            select(AuditEvent.action).where(AuditEvent.actor_id == office.id)
        ).all()
        assert actions.count("phone.added") == 2
        assert "phones.imported" in actions
    assert "Imported 2 phones." in office_client.get("/phones").get_data(as_text=True)


def test_one_bad_number_rejects_the_file_naming_the_row(app, office_client):
    data = (GOOD + "Trip phone 3,07700 900123,\nTrip phone 4,07400 123404,\n").encode()
    events = count(app, AuditEvent)
    response = upload(office_client, data)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "Nothing was imported" in page
    assert "row 4: &#39;07700 900123&#39; is not a valid phone number" in page
    assert count(app, Phone) == 0
    assert count(app, AuditEvent) == events


def test_every_bad_row_is_reported(app):
    with app.app_context():
        ops.add_phone(FACTORY, label="Trip phone 9", number="07400123409")
        db.session.commit()
        data = (
            "Label,Number\n"
            "Trip phone 1,07400 123401\n"
            "trip phone 9,07400 123408\n"  # label already in the pool
            "Trip phone 2,01234 567890\n"  # a landline
            "Trip phone 1,07400 123407\n"  # label twice in the file
            ",07400 123406\n"
            f"{'x' * 61},07400 123405\n"
            "Trip phone 5,07400 123409\n"  # number already in the pool
            "Trip phone 6,07400 123411,serial,extra\n"
        ).encode()
        with pytest.raises(ops.ImportRejected) as err:
            ops.import_phones(FACTORY, data)
        assert err.value.problems == [
            "row 3: there is already a phone labelled 'trip phone 9'",
            "row 4: '01234 567890' is not a mobile number",
            "row 5: label 'Trip phone 1' is also on row 2",
            "row 6: a label is required",
            "row 7: a label is at most 60 characters",
            "row 8: 07400 123409 is already the number of Trip phone 9",
            "row 9: it has more cells than the header",
        ]
        assert str(err.value).startswith("nothing imported; 7 rows have problems: row 3:")
        db.session.rollback()
        assert len(db.session.scalars(select(Phone)).all()) == 1


def test_a_large_binary_file_gets_a_clear_message(app, office_client):
    data = os.urandom(5 * 1024 * 1024)
    response = upload(office_client, data, "photo.jpg")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "that file is not a CSV text file" in page
    assert "Save As, CSV UTF-8" in page
    assert count(app, Phone) == 0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("label,number,serial\nTéléphone,07400 123401,\n".encode("latin-1"), "not UTF-8 text"),
        (None, "choose a CSV file"),  # no file chosen
        (b"", "that file is empty"),
        (b"\r\n\r\n", "that file is empty"),
        (b"label,number,serial\r\n", "the file has a header but no phones"),
        (b"name,mobile\nTrip phone 1,07400123401\n", "the first row must be the header"),
        (b"label,number,label\nA,07400123401,B\n", "the header names a column twice"),
        (b"label,number\n" + b"x" * 1_000_001, "that file is too large (at most 1,000 kB)"),
    ],
)
def test_files_that_are_not_a_phones_csv(app, office_client, data, message):
    response = upload(office_client, data)
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert count(app, Phone) == 0


def test_cli_import(app, runner, tmp_path):
    good = tmp_path / "phones.csv"
    good.write_bytes(b"\xef\xbb\xbf" + GOOD.replace("\n", "\r\n").encode())
    result = runner.invoke(args=["phones", "import", str(good)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    with app.app_context():
        ids = [str(i) for i in db.session.scalars(select(Phone.id).order_by(Phone.id))]
    assert lines[-1] == " ".join(ids)
    assert lines[0] == f"added Trip phone 1 ({ids[0]})"

    bad = tmp_path / "bad.csv"
    bad.write_text("label,number,serial\nTrip phone 3,07700 900123,\n")
    result = runner.invoke(args=["phones", "import", str(bad)])
    assert result.exit_code == 1
    assert result.output.strip() == (
        "Error: nothing imported: row 2: '07700 900123' is not a valid phone number"
    )
    binary = tmp_path / "binary.csv"
    binary.write_bytes(os.urandom(5 * 1024 * 1024))
    result = runner.invoke(args=["phones", "import", str(binary)])
    assert result.exit_code == 1
    assert "that file is not a CSV text file" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert count(app, Phone) == 2

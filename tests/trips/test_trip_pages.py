import io

import pytest
from sqlalchemy import func, select
from werkzeug.datastructures import FileStorage
from werkzeug.test import encode_multipart

from tests.helpers import local
from tests.trips.rosters import HEADER, mobile, roster_csv
from tripcomms.extensions import db
from tripcomms.trips.models import Contact, Trip

ROSTER = roster_csv(
    [
        f"Sam,Jones,Year 6,Mary Jones,mother,{mobile(1)}",
        f"Ella,Smith,Year 5,Ann Smith,carer,{mobile(3)}",
    ]
)


def trip_form(leader, **overrides):
    data = {
        "title": "Year 6 Science Museum",
        "destination": "London",
        "starts_at": "2030-03-14T08:30",
        "ends_at": "2030-03-14T17:00",
        "leader_id": str(leader),
        "notes": "",
    }
    data.update(overrides)
    return data


def trip_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Trip))


@pytest.fixture
def office(client, factory):
    user = factory.user("office")
    client.login(user.email)
    return user


def test_office_plans_a_trip_in_local_time(app, client, office, factory):
    leader = factory.user("leader", name="Liam Leader")
    helper = factory.user("leader", name="Hana Helper")
    response = client.post_form(
        "/trips/new", {**trip_form(leader.id), "staff_ids": [str(helper.id)]}
    )
    assert response.status_code == 303
    with app.app_context():
        trip = db.session.scalar(select(Trip))
        assert trip.starts_at == local("2030-03-14 08:30")
        assert trip.starts_at.hour == 8  # March is GMT
        assert [u.name for u in trip.staff] == ["Hana Helper"]
    page = client.get(response.location).get_data(as_text=True)
    assert "Year 6 Science Museum" in page
    assert "Thu 14 Mar 2030 08:30" in page
    assert "Roster imported" in page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ends_at": "2030-03-14T08:00"}, "the trip must end after it starts"),
        ({"leader_id": ""}, "This field is required."),
        ({"title": ""}, "This field is required."),
        ({"title": "x" * 201}, "Field cannot be longer than 200 characters"),
        ({"starts_at": "14/03/2030"}, "Not a valid datetime value."),
    ],
)
def test_bad_trip_input_changes_nothing(app, client, office, factory, overrides, message):
    leader = factory.user("leader")
    response = client.post_form("/trips/new", trip_form(leader.id, **overrides))
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    assert trip_count(app) == 0


def test_a_non_leader_cannot_lead(app, client, office, factory):
    auditor = factory.user("auditor")
    response = client.post_form("/trips/new", trip_form(auditor.id))
    assert "Not a valid choice" in response.get_data(as_text=True)
    assert trip_count(app) == 0


def test_edit_and_cancel(app, client, office, factory):
    leader = factory.user("leader")
    trip_id = factory.trip(leader, starts_at=local("2030-05-01 09:00"))
    form = client.get(f"/trips/{trip_id}/edit").get_data(as_text=True)
    assert 'value="2030-05-01T09:00"' in form  # BST shown as typed
    response = client.post_form(
        f"/trips/{trip_id}/edit",
        trip_form(leader.id, starts_at="2030-05-01T10:00", ends_at="2030-05-01T16:00"),
    )
    assert response.status_code == 303
    with app.app_context():
        assert db.session.get(Trip, trip_id).starts_at == local("2030-05-01 10:00")
    response = client.post_form(f"/trips/{trip_id}/cancel", {"reason": ""}, follow_redirects=True)
    assert "give a reason" in response.get_data(as_text=True)
    response = client.post_form(
        f"/trips/{trip_id}/cancel", {"reason": "Museum closed"}, follow_redirects=True
    )
    page = response.get_data(as_text=True)
    assert "Cancelled" in page and "Museum closed" in page
    response = client.post_form(
        f"/trips/{trip_id}/cancel", {"reason": "again"}, follow_redirects=True
    )
    assert "already cancelled" in response.get_data(as_text=True)


def test_leaders_see_only_their_trips(app, client, factory):
    leader, other = factory.user("leader"), factory.user("leader")
    helper = factory.user("leader")
    mine = factory.trip(leader, title="Mine", staff=(helper,))
    theirs = factory.trip(other, title="Theirs")
    client.login(leader.email)
    page = client.get("/trips/?show=all").get_data(as_text=True)
    assert "Mine" in page and "Theirs" not in page
    assert client.get(f"/trips/{mine}").status_code == 200
    assert client.get(f"/trips/{theirs}").status_code == 404
    assert client.get(f"/trips/{mine}/edit").status_code == 403
    client.logout()
    client.login(helper.email)  # accompanying staff see it too
    assert client.get(f"/trips/{mine}").status_code == 200
    assert client.get(f"/trips/{theirs}").status_code == 404


@pytest.mark.parametrize("role", ["dsl", "admin"])
def test_roles_without_trips_see_none(client, factory, role):
    trip = factory.trip()
    user = factory.user(role)
    client.login(user.email)
    assert client.get(f"/trips/{trip}").status_code == 404


def test_trip_list_pages_and_sorts(app, client, office, factory):
    leader = factory.user("leader")
    for i in range(30):
        factory.trip(leader, title=f"Trip {i:02d}", starts_at=local(f"2030-01-{i + 1:02d} 09:00"))
    page1 = client.get("/trips/").get_data(as_text=True)
    assert "Trip 00" in page1 and "Trip 24" in page1 and "Trip 25" not in page1
    assert "Page 1 of 2 (30)" in page1
    page2 = client.get("/trips/?page=2").get_data(as_text=True)
    assert "Trip 25" in page2 and "Trip 00" not in page2
    desc = client.get("/trips/?sort=-title").get_data(as_text=True)
    assert desc.index("Trip 29") < desc.index("Trip 28")
    assert client.get("/trips/?sort=password_hash").status_code == 200  # ignored


def upload(client, trip_id, data: bytes, name="roster.csv"):
    # Encoded in memory: the test client spools large bodies to a file it never closes.
    boundary, body = encode_multipart(
        {"csrf_token": client.csrf_token(), "roster": FileStorage(io.BytesIO(data), name)}
    )
    return client.post(
        f"/trips/{trip_id}/roster",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def test_roster_upload_and_roster_shown_without_numbers_to_leaders(app, client, office, factory):
    leader = factory.user("leader")
    trip = factory.trip(leader)
    response = upload(client, trip, ROSTER)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "pupils: 2 added" in page
    trip_page = client.get(f"/trips/{trip}").get_data(as_text=True)
    assert "07400 000001" in trip_page  # the office sees numbers
    client.logout()
    client.login(leader.email)
    trip_page = client.get(f"/trips/{trip}").get_data(as_text=True)
    assert "#1" in trip_page and "Mary Jones" in trip_page and "Sam J. (mother)" in trip_page
    assert "07400" not in trip_page and "+44" not in trip_page
    assert upload(client, trip, ROSTER).status_code == 403


def test_bad_roster_upload_lists_rows_and_imports_nothing(app, client, office, factory):
    trip = factory.trip()
    bad = roster_csv([f"Sam,Jones,6,Mary Jones,mother,{mobile(1)}", "Ella,Smith,5,Ann,carer,123"])
    response = upload(client, trip, bad)
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Nothing was imported" in page
    assert "Row 3: mobile: &#39;123&#39; is not a valid phone number" in page
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Contact)) == 0


def test_binary_upload_gets_a_clear_message(app, client, office, factory):
    trip = factory.trip()
    junk = bytes(range(256)) * (5 * 1024 * 1024 // 256)
    response = upload(client, trip, junk, name="photo.csv")
    assert response.status_code == 422
    assert "not a CSV text file" in response.get_data(as_text=True)


def test_missing_file(client, office, factory):
    trip = factory.trip()
    response = client.post_form(f"/trips/{trip}/roster", {})
    assert "Choose the roster file to upload" in response.get_data(as_text=True)


def test_image_restricted_list_is_shown_to_the_trip_staff(app, client, factory):
    leader, other = factory.user("leader"), factory.user("leader")
    trip = factory.trip(leader)
    data = roster_csv(
        [f"Sam,Jones,6,Mary Jones,mother,{mobile(1)},yes", f"Ella,Smith,5,Ann,carer,{mobile(2)},"],
        header=HEADER + ",image_restricted",
    )
    office = factory.user("office")
    client.login(office.email)
    upload(client, trip, data)
    client.logout()
    client.login(leader.email)
    page = client.get(f"/trips/{trip}").get_data(as_text=True)
    section = page[page.index("Never in pictures") :]
    assert "Sam Jones (6)" in section
    assert "Ella Smith" not in section[: section.index("</section>")]
    client.logout()
    client.login(other.email)
    assert client.get(f"/trips/{trip}").status_code == 404


def test_home_pages(client, factory):
    leader = factory.user("leader")
    factory.trip(leader, title="Zoo day")
    client.login(leader.email)
    assert "Zoo day" in client.get("/").get_data(as_text=True)
    client.logout()
    office = factory.user("office")
    client.login(office.email)
    page = client.get("/").get_data(as_text=True)
    assert "Zoo day" in page and "Not ready: roster imported" in page


def test_cli_create_and_import(app, runner, factory, tmp_path):
    leader = factory.user("leader", email="liam@school.test")
    factory.user("leader", email="hana@school.test")
    result = runner.invoke(
        args=[
            "trips",
            "create",
            "--title",
            "Farm visit",
            "--leader",
            "liam@school.test",
            "--starts",
            "2030-06-01 09:00",
            "--ends",
            "2030-06-01 15:00",
            "--staff",
            "hana@school.test",
            "--destination",
            "Old Farm",
        ],
    )
    assert result.exit_code == 0, result.output
    trip_id = int(result.output.strip().splitlines()[-1])
    with app.app_context():
        trip = db.session.get(Trip, trip_id)
        assert trip.leader_id == leader.id and trip.starts_at == local("2030-06-01 09:00")
    path = tmp_path / "roster.csv"
    path.write_bytes(ROSTER)
    result = runner.invoke(args=["trips", "import-roster", str(trip_id), str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip().splitlines()[-1].startswith("2 rows read; pupils: 2 added")
    path.write_bytes(roster_csv(["Sam,Jones,6,Mary,mother,nope"]))
    result = runner.invoke(args=["trips", "import-roster", str(trip_id), str(path)])
    assert result.exit_code == 1
    assert "row 2: mobile: 'nope' is not a phone number" in result.output
    assert result.output.strip().splitlines()[-1] == (
        "Error: the roster was not imported: 1 row has problems; nothing was changed"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--leader", "nobody@school.test"], "no active staff account for nobody@school.test"),
        (["--starts", "tomorrow"], "--starts must look like 2026-03-14 09:30"),
        (["--ends", "2030-06-01 08:00"], "the trip must end after it starts"),
    ],
)
def test_cli_create_bad_input(app, runner, factory, args, message):
    factory.user("leader", email="liam@school.test")
    base = {
        "--title": "Farm",
        "--leader": "liam@school.test",
        "--starts": "2030-06-01 09:00",
        "--ends": "2030-06-01 15:00",
    }
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    argv = ["trips", "create"] + [x for pair in base.items() for x in pair]
    result = runner.invoke(args=argv)
    assert result.exit_code == 1
    assert message in result.output
    assert trip_count(app) == 0


def test_roster_on_the_trip_page_pages_and_sorts(app, client, office, factory):
    from tests.trips.rosters import big_roster

    trip = factory.trip()
    upload(client, trip, big_roster(120, contacts_per_pupil=1))
    page1 = client.get(f"/trips/{trip}").get_data(as_text=True)
    assert "<td>#100</td>" in page1 and "<td>#101</td>" not in page1
    assert "Page 1 of 2 (120)" in page1
    page2 = client.get(f"/trips/{trip}?page=2").get_data(as_text=True)
    assert "<td>#101</td>" in page2 and "<td>#120</td>" in page2
    by_name = client.get(f"/trips/{trip}?sort=-name").get_data(as_text=True)
    assert by_name.index("Parent0 Family99") < by_name.index("Parent0 Family98")
    assert "Parent0 Family0<" not in by_name  # last by name: on page 2

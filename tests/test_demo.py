from click.testing import CliRunner

from tripcomms.demo import DEMO_PASSWORD, DEMO_TRIP_NUMBERS, DEMO_USERS, demo_command


def test_demo_creates_a_fresh_seeded_database(tmp_path, monkeypatch):
    import flask

    monkeypatch.setattr(flask.Flask, "auto_find_instance_path", lambda self: str(tmp_path))
    runner = CliRunner()
    result = runner.invoke(demo_command, ["--no-serve"])
    assert result.exit_code == 0, result.output
    database = tmp_path / "demo.sqlite"
    assert database.exists()
    for email, *_ in DEMO_USERS:
        assert email in result.output
    assert DEMO_PASSWORD in result.output

    # Every role can sign in to the seeded database.
    from tests.helpers import TripcommsClient
    from tripcomms import create_app
    from tripcomms.demo import demo_config

    app = create_app(demo_config(tmp_path, "127.0.0.1", 5000))
    app.test_client_class = TripcommsClient
    for email, name, _roles, _numbers in DEMO_USERS:
        client = app.test_client()
        assert client.login(email, DEMO_PASSWORD).status_code == 303, email
        assert f"Hello, {name}" in client.get("/").get_data(as_text=True)
    with app.app_context():
        from sqlalchemy import func, select

        from tripcomms.extensions import db
        from tripcomms.trips.models import Contact, Pupil, Trip, TripState

        trips = db.session.scalars(select(Trip).order_by(Trip.starts_at)).all()
        assert [t.state for t in trips] == [TripState.IN_PROGRESS, TripState.PLANNED]
        assert db.session.scalar(select(func.count()).select_from(Pupil)) == 30
        assert db.session.scalar(select(func.count()).select_from(Contact)) == 45
        from tripcomms.phones.models import Loan, Phone

        assert db.session.scalar(select(func.count()).select_from(Phone)) == 6
        on_loan = db.session.scalars(select(Loan).where(Loan.returned_at.is_(None))).all()
        assert [loan.trip_id for loan in on_loan] == [trips[0].id, trips[0].id]
        from tripcomms.approvals.models import ApprovalState, PersonalPhoneApproval

        approvals = db.session.scalars(select(PersonalPhoneApproval)).all()
        assert sorted(a.state for a in approvals) == sorted(
            [ApprovalState.APPROVED, ApprovalState.PENDING]
        )
        assert on_loan[0].holder.email == "leader@demo.school"  # the leader's school phone
        from tripcomms.relay.models import MessageTemplate, ProxyNumber
        from tripcomms.relay.numbers import trip_number

        numbers = db.session.scalars(select(ProxyNumber.number).order_by(ProxyNumber.number))
        assert list(numbers) == DEMO_TRIP_NUMBERS
        assert trip_number(trips[0]) and trip_number(trips[1])
        assert trip_number(trips[0]) != trip_number(trips[1])
        assert db.session.scalar(select(func.count()).select_from(MessageTemplate)) >= 3
        db.engine.dispose()
    simulated = app.extensions["simulator"].numbers()
    assert [n.phone_number for n in simulated] == DEMO_TRIP_NUMBERS

    # An existing demo database is not replaced without --yes when nobody can be asked.
    result = runner.invoke(demo_command, ["--no-serve"])
    assert result.exit_code == 1
    assert "exists; run again with --yes" in result.output
    result = runner.invoke(demo_command, ["--no-serve", "--yes"])
    assert result.exit_code == 0, result.output


def test_demo_serves_until_stopped(tmp_path):
    """`flask --app tripcomms demo` really serves (Flask ignores app.run() in a CLI command)."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time

    import requests

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIPCOMMS_")}
    code = (
        "import flask, sys;"
        f"flask.Flask.auto_find_instance_path = lambda self: {str(tmp_path)!r};"
        "from tripcomms.demo import demo_command;"
        f"demo_command.main(['--yes', '--port', '{port}'], standalone_mode=True)"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                response = requests.get(f"http://127.0.0.1:{port}/login", timeout=2)
                break
            except requests.ConnectionError:
                assert process.poll() is None, process.stdout.read().decode()
                assert time.monotonic() < deadline, "the demo did not start serving"
                time.sleep(0.2)
        assert response.status_code == 200
        assert "Demo Primary School" in response.text
        _the_day_so_far_is_in_the_leaders_inbox(f"http://127.0.0.1:{port}")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


def _the_day_so_far_is_in_the_leaders_inbox(base: str) -> None:
    """The demo texted its history through the real relay: threads, replies, a broadcast."""
    import re
    import time

    import requests

    session = requests.Session()
    page = session.get(f"{base}/login", timeout=5).text
    token = re.search(r'<meta name="csrf-token" content="([^"]+)">', page).group(1)
    session.post(
        f"{base}/login",
        data={"csrf_token": token, "email": "leader@demo.school", "password": DEMO_PASSWORD},
        timeout=5,
    )
    deadline = time.monotonic() + 60
    while True:
        data = session.get(f"{base}/trips/1/inbox.json", timeout=5).json()
        if len(data["threads"]) == 3 and data["waiting"] == 1:
            break
        assert time.monotonic() < deadline, data
        time.sleep(0.5)
    first = session.get(f"{base}/trips/1/inbox/1.json", timeout=5).json()["messages"]
    assert [m["how"] for m in first] == [
        "to everyone on the trip, by text",
        "",
        "by text",
    ]
    assert first[-1]["state"] == "delivered"
    hows = [
        m["how"] for m in session.get(f"{base}/trips/1/inbox/3.json", timeout=5).json()["messages"]
    ]
    assert "on the web" in hows
    phones = session.get(f"{base}/sim/phones", timeout=5).text
    assert "Trip phone 1" in phones and "with Liam Leader" in phones

from click.testing import CliRunner

from tripcomms.demo import DEMO_PASSWORD, DEMO_USERS, demo_command


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
        db.engine.dispose()

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
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()

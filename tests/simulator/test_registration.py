"""The simulator exists only with the "simulator" backend, and building the app starts nothing."""

from __future__ import annotations

import threading

import pytest

from tests.simulator.fixtures import PARENT, TWILIO_NUMBER
from tripcomms import create_app
from tripcomms.simulator import Simulator, get_simulator

SID = "AC" + "1" * 32


def test_with_the_twilio_backend_there_is_no_simulator(app_config):
    app = create_app({**app_config, "SMS_BACKEND": "twilio"})
    client = app.test_client()

    assert "simulator" not in app.extensions
    assert not [r.rule for r in app.url_map.iter_rules() if r.rule.startswith("/sim")]
    url = f"/sim/twilio/2010-04-01/Accounts/{SID}/Messages.json"
    assert client.post(url, data={"To": PARENT}, auth=(SID, "test-auth-token")).status_code == 404
    assert client.get(f"/sim/twilio/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json")
    with pytest.raises(LookupError):
        get_simulator(app)


def test_building_the_app_starts_no_thread(app_config):
    # Only threads that last are compared: the rate limiter's memory storage (of any app built
    # earlier in the session) keeps re-arming short Timer threads.
    def lasting() -> set[threading.Thread]:
        return {t for t in threading.enumerate() if not isinstance(t, threading.Timer)}

    before = lasting()
    app = create_app(app_config)
    assert isinstance(get_simulator(app), Simulator)
    assert lasting() == before


def test_simulator_numbers_setting_seeds_the_account(app_config):
    app = create_app({**app_config, "SIMULATOR_NUMBERS": [TWILIO_NUMBER, "+447712345600"]})
    assert [n.phone_number for n in get_simulator(app).numbers()] == [
        TWILIO_NUMBER,
        "+447712345600",
    ]


def test_the_api_is_not_behind_csrf(app, sim, twilio_number):
    # A form POST without a CSRF token, as the twilio library sends it, reaches the API.
    client = app.test_client()
    response = client.post(
        f"/sim/twilio/2010-04-01/Accounts/{SID}/Messages.json",
        data={"To": PARENT, "From": TWILIO_NUMBER, "Body": "hello"},
        auth=(SID, "test-auth-token"),
    )
    assert response.status_code == 201
    assert response.json["status"] == "queued"


def test_workers_start_on_first_use_and_end_when_idle(app, sim, twilio_number):
    def workers() -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t.name == "simulator-worker"]

    assert workers() == []
    sim.update_number(sim.numbers()[0].sid, {})
    assert workers() == []
    sim.create_message({"To": PARENT, "From": TWILIO_NUMBER, "Body": "hello"})
    assert len(workers()) == 1
    sim.wait_idle()
    for thread in workers():
        thread.join(3)  # each ends by itself after a second with nothing to do
    assert workers() == []

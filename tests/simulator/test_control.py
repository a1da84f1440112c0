"""The simulator's control routes (faults, report, wait-idle) and the standalone server."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections import Counter

import pytest
import requests
from flask import Flask, Response, request

from tests.live import serve
from tests.simulator.fixtures import AUTH_TOKEN, PARENT, TWILIO_NUMBER
from tripcomms.config import ConfigError
from tripcomms.relay.gateway import ErrorKind, GatewayError, TwilioGateway
from tripcomms.simulator import standalone

SID = "AC" + "1" * 32
AUTH = (SID, AUTH_TOKEN)


@pytest.fixture
def control(live_sim) -> str:
    return f"{live_sim}/sim/twilio/control/{SID}"


def test_the_control_routes_need_the_account_credentials(control, sim):
    for method, path in [("POST", "/faults"), ("GET", "/report"), ("POST", "/wait-idle")]:
        for auth in (None, (SID, "wrong")):
            response = requests.request(method, control + path, auth=auth, json={}, timeout=5)
            assert response.status_code == 401
    other = control.replace(SID, "AC" + "2" * 32)
    assert requests.get(other + "/report", auth=AUTH, timeout=5).status_code == 401


def test_the_control_routes_exist_only_with_the_simulator(app_config):
    from tripcomms import create_app

    app = create_app({**app_config, "SMS_BACKEND": "twilio"})
    response = app.test_client().get(f"/sim/twilio/control/{SID}/report")
    assert response.status_code == 404


def test_fault_rates_and_latency_are_set_over_http(control, sim, gateway, twilio_number):
    response = requests.post(
        control + "/faults",
        json={"rates": {"429": 0.5, "500": 0.5}, "seed": 3, "latency": 0.05},
        auth=AUTH,
        timeout=5,
    )
    assert response.status_code == 200, response.text

    started = time.perf_counter()
    kinds = Counter()
    for _ in range(20):
        with pytest.raises(GatewayError) as caught:
            gateway.send(PARENT, TWILIO_NUMBER, "hello", None)
        assert caught.value.kind is ErrorKind.RETRYABLE
        kinds[caught.value.http_status] += 1
    assert time.perf_counter() - started >= 20 * 0.05
    assert set(kinds) == {429, 500}

    report = requests.get(control + "/report", auth=AUTH, timeout=5).json()
    assert report["creates"] == {"429": kinds[429], "500": kinds[500]}
    assert report["outbound"] == []


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ([1, 2], "JSON object"),
        ({"rate": {"429": 0.1}}, "unknown keys: rate"),
        ({"rates": {"429": 1.5}}, "between 0 and 1"),
        ({"rates": {"429": "often"}}, "must be a number"),
        ({"rates": {"404": 0.1}}, "unknown outcome"),
        ({"rates": {"429": 0.7, "500": 0.7}}, "more than 1"),
        ({"rates": [0.1]}, "rates must be an object"),
        ({"rates": {"429": 0.1}, "seed": "x"}, "seed must be a whole number"),
        ({"rates": {"429": 0.1}, "latency": -1}, "latency must be between"),
        ({"rates": {"429": 0.1}, "latency": True}, "latency must be a number"),
    ],
)
def test_bad_faults_are_refused_and_change_nothing(control, sim, twilio_number, payload, reason):
    response = requests.post(control + "/faults", json=payload, auth=AUTH, timeout=5)

    assert response.status_code == 400
    assert reason in response.json()["error"]
    for _ in range(20):  # still a perfect Twilio: no rate was set
        assert sim.create_message({"To": PARENT, "From": TWILIO_NUMBER, "Body": "hi"})["sid"]


def test_the_report_counts_deliveries_duplicates_and_callbacks(
    app, control, sim, gateway, receiver, twilio_number
):
    callback = receiver.url + "/twilio/status"
    first = gateway.send(PARENT, TWILIO_NUMBER, "Coach at 4", callback)
    again = gateway.send(PARENT, TWILIO_NUMBER, "Coach at 4", callback)  # the same text twice
    receiver.failures = 1  # the first callback attempt gets a 500, its retry a 200
    other = gateway.send("+447922234567", TWILIO_NUMBER, "Lunch", callback)
    idle = requests.post(control + "/wait-idle", json={"timeout": 10}, auth=AUTH, timeout=15)
    assert idle.json() == {"idle": True}

    report = requests.get(control + "/report", auth=AUTH, timeout=5).json()

    assert report["creates"] == {"201": 3}
    requested = [m["requested"] for m in report["outbound"]]
    assert requested == sorted(requested) and time.time() - 60 < requested[0] <= time.time()
    assert {m["sid"]: m["deliveries"] for m in report["outbound"]} == {
        first.sid: 1,
        again.sid: 1,
        other.sid: 1,
    }
    assert {m["status"] for m in report["outbound"]} == {"delivered"}
    assert report["duplicates"] == [{"to": PARENT, "body": "Coach at 4", "count": 2}]
    callbacks = report["callbacks"]
    assert (callbacks["delivered"], callbacks["dropped"], callbacks["retried"]) == (6, 0, 1)
    assert callbacks["attempts"] == {"200": 6, "500": 1}
    assert report["busy"] == 0


def test_wait_idle_says_what_is_still_pending(control, sim, gateway, twilio_number):
    sim.configure(delivery_delay=5)
    gateway.send(PARENT, TWILIO_NUMBER, "later", None)

    response = requests.post(control + "/wait-idle", json={"timeout": 0.1}, auth=AUTH, timeout=5)

    assert response.status_code == 409
    assert response.json() == {"idle": False, "busy": 1}
    bad = requests.post(control + "/wait-idle", json={"timeout": 301}, auth=AUTH, timeout=5)
    assert bad.status_code == 400
    assert "timeout must be between 0 and 300" in bad.json()["error"]


# --- The standalone server -----------------------------------------------------------------


def test_the_standalone_app_needs_its_settings():
    with pytest.raises(ConfigError, match="needs TWILIO_AUTH_TOKEN, PUBLIC_BASE_URL"):
        standalone.create_app({"TWILIO_ACCOUNT_SID": SID})


def test_the_standalone_app_serves_the_api_and_posts_callbacks_to_the_app():
    received: list[tuple[str, str]] = []
    app_side = Flask(__name__)

    @app_side.post("/twilio/status")
    def status() -> Response:
        received.append((request.form["MessageSid"], request.form["MessageStatus"]))
        return Response(status=204)

    with serve(app_side) as app_url:
        sim_app = standalone.create_app(
            {
                "TWILIO_ACCOUNT_SID": SID,
                "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
                "PUBLIC_BASE_URL": app_url + "/",
                "SIMULATOR_NUMBERS": [TWILIO_NUMBER],
                "SIMULATOR_DELIVERY_DELAY": 0.01,
            }
        )
        assert [rule.rule for rule in sim_app.url_map.iter_rules() if "phones" in rule.rule] == []
        sim = sim_app.extensions["simulator"]
        try:
            with serve(sim_app) as sim_url:
                with TwilioGateway(SID, AUTH_TOKEN, base_url=sim_url + "/sim/twilio") as gateway:
                    result = gateway.send(PARENT, TWILIO_NUMBER, "hi", app_url + "/twilio/status")
                sim.wait_idle(5)
        finally:
            sim.close()

    assert received == [(result.sid, "sent"), (result.sid, "delivered")]
    assert sim.deliveries(result.sid) == 1


def test_the_standalone_server_runs_as_a_process_and_stops_on_sigterm():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        "PATH": "/usr/bin:/bin",
        "TRIPCOMMS_TWILIO_ACCOUNT_SID": SID,
        "TRIPCOMMS_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TRIPCOMMS_PUBLIC_BASE_URL": "http://127.0.0.1:9",
        "TRIPCOMMS_SIMULATOR_NUMBERS": f'["{TWILIO_NUMBER}"]',
    }
    command = [sys.executable, "-m", "tripcomms.simulator.standalone", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert (
            process.stdout.readline().strip() == f"simulator listening on http://127.0.0.1:{port}"
        )
        numbers = requests.get(
            f"http://127.0.0.1:{port}/sim/twilio/2010-04-01/Accounts/{SID}/IncomingPhoneNumbers.json",
            auth=AUTH,
            timeout=5,
        ).json()["incoming_phone_numbers"]
        assert [n["phone_number"] for n in numbers] == [TWILIO_NUMBER]
    finally:
        process.terminate()
        assert process.wait(10) == 0
        process.stdout.close()


def test_the_standalone_server_says_which_setting_is_missing():
    command = [sys.executable, "-m", "tripcomms.simulator.standalone", "--port", "0"]
    result = subprocess.run(
        command, env={"PATH": "/usr/bin:/bin"}, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert "needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, PUBLIC_BASE_URL" in result.stderr

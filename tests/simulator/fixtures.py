"""Fixtures for tests that drive the Twilio simulator over real HTTP.

Import them into a package's conftest (``from tests.simulator.fixtures import ...``):
- ``sim``: the app's Simulator, paced for tests, closed afterwards;
- ``live_sim``: the app served on 127.0.0.1 with PUBLIC_BASE_URL pointing at it (its URL);
- ``gateway``: a TwilioGateway from the app's settings, so it talks to the served simulator;
- ``receiver``: a second tiny app that records every webhook posted to it (``Receiver``);
- ``twilio_number``: TWILIO_NUMBER, given to the simulated account.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator

from tests.live import serve
from tripcomms.relay.gateway import TwilioGateway, gateway_from_config
from tripcomms.simulator import Simulator

# Numbers that pass phonenumbers.is_valid_number (Ofcom's drama range does not).
TWILIO_NUMBER = "+447401234567"
PARENT = "+447812345678"
OTHER_PARENT = "+447922234567"
AUTH_TOKEN = "test-auth-token"  # BASE_CONFIG's TWILIO_AUTH_TOKEN
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'


@dataclass(frozen=True)
class Received:
    """One POST that reached the Receiver."""

    path: str
    url: str
    form: dict[str, str]
    headers: dict[str, str]

    def signature_is_valid(self, auth_token: str = AUTH_TOKEN) -> bool:
        signature = self.headers.get("X-Twilio-Signature", "")
        return RequestValidator(auth_token).validate(self.url, self.form, signature)


class Receiver:
    """A stand-in for tripcomms' webhooks: records each POST and answers with ``twiml``
    (or HTTP 500 while ``failures`` is above zero)."""

    def __init__(self) -> None:
        self.url = ""
        self.twiml = EMPTY_TWIML
        self.failures = 0
        self._changed = threading.Condition()
        self._received: list[Received] = []
        self.app = Flask(__name__)
        self.app.add_url_rule("/<path:path>", "receive", self._receive, methods=["POST"])

    def _receive(self, path: str) -> Response:
        with self._changed:
            self._received.append(
                Received("/" + path, request.url, request.form.to_dict(), dict(request.headers))
            )
            self._changed.notify_all()
            if self.failures > 0:
                self.failures -= 1
                return Response("unavailable", status=500)
            return Response(self.twiml, mimetype="text/xml")

    def received(self, path: str | None = None) -> list[Received]:
        with self._changed:
            return [r for r in self._received if path is None or r.path == path]

    def wait_for(self, count: int, path: str | None = None, timeout: float = 5) -> list[Received]:
        """Wait until ``count`` posts (to ``path``) arrived; return them. Fails on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(got := self.received(path)) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    pytest.fail(f"expected {count} posts to {path or 'the receiver'}, got {got}")
                self._changed.wait(remaining)
            return got


@pytest.fixture
def sim(app) -> Iterator[Simulator]:
    simulator: Simulator = app.extensions["simulator"]
    simulator.configure(delivery_delay=0.01, callback_backoff=0.02, callback_timeout=2)
    yield simulator
    simulator.close()


@pytest.fixture
def live_sim(app, sim) -> Iterator[str]:
    with serve(app) as url:
        app.config["PUBLIC_BASE_URL"] = url
        yield url
        # Stop callbacks and sleeping API calls while the server still answers.
        sim.close()


@pytest.fixture
def gateway(app, live_sim) -> Iterator[TwilioGateway]:
    with gateway_from_config(app.config) as gateway:
        yield gateway


@pytest.fixture
def receiver(sim) -> Iterator[Receiver]:
    receiver = Receiver()
    with serve(receiver.app) as url:
        receiver.url = url
        yield receiver
        sim.close()


@pytest.fixture
def twilio_number(sim) -> str:
    sim.add_number(TWILIO_NUMBER)
    return TWILIO_NUMBER

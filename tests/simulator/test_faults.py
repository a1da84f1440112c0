"""Scripted and random faults, recipient rules and message segments."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.simulator.fixtures import OTHER_PARENT, PARENT, TWILIO_NUMBER
from tripcomms.relay.gateway import ErrorKind, GatewayError
from tripcomms.simulator.faults import OK, FaultPlan, Outcome, parse_outcome
from tripcomms.simulator.records import count_segments


@pytest.mark.parametrize(
    ("text", "outcome"),
    [
        ("ok", OK),
        ("timeout", Outcome("timeout")),
        ("timeout-accepted", Outcome("timeout-accepted")),
        ("429", Outcome("error", 20429)),
        ("500", Outcome("error", 20500)),
        ("503", Outcome("error", 20503)),
        ("21610", Outcome("error", 21610)),
        (" 21211 ", Outcome("error", 21211)),
    ],
)
def test_outcomes_are_parsed(text, outcome):
    assert parse_outcome(text) == outcome


@pytest.mark.parametrize("text", ["", "slow", "404", "2161", "216100"])
def test_unknown_outcomes_are_refused(text, sim):
    with pytest.raises(ValueError, match="unknown outcome"):
        parse_outcome(text)
    with pytest.raises(ValueError, match="unknown outcome"):
        sim.script("ok", text)


def test_the_script_comes_before_the_random_rates():
    plan = FaultPlan()
    plan.set_rates({"500": 1.0}, seed=1)
    plan.add_script(("429", "ok"))
    assert [plan.next_outcome().code for _ in range(3)] == [20429, None, 20500]


def test_random_rates_are_repeatable_and_near_their_rates():
    def draws(seed: int) -> list[Outcome]:
        plan = FaultPlan()
        plan.set_rates({"429": 0.10, "500": 0.05}, seed=seed)
        return [plan.next_outcome() for _ in range(4000)]

    first = draws(42)
    assert first == draws(42)
    assert first != draws(43)
    counts = Counter(outcome.code for outcome in first)
    assert 0.08 < counts[20429] / 4000 < 0.12
    assert 0.035 < counts[20500] / 4000 < 0.065


@pytest.mark.parametrize("rates", [{"429": 1.5}, {"429": -0.1}, {"429": 0.6, "500": 0.5}])
def test_impossible_rates_are_refused(rates):
    with pytest.raises(ValueError):
        FaultPlan().set_rates(rates, seed=1)


def test_seeded_random_faults_over_http_follow_the_seed(gateway, sim, twilio_number):
    expected_plan = FaultPlan()
    expected_plan.set_rates({"429": 0.25, "500": 0.25}, seed=7)
    expected = [expected_plan.next_outcome().code for _ in range(30)]
    sim.set_fault_rates({"429": 0.25, "500": 0.25}, seed=7)

    seen = []
    for n in range(30):
        try:
            gateway.send(PARENT, TWILIO_NUMBER, f"text {n}")
            seen.append(None)
        except GatewayError as error:
            assert error.kind is ErrorKind.RETRYABLE
            seen.append(error.code)

    assert seen == expected
    assert 0 < seen.count(None) < 30
    sim.wait_idle()
    assert len(sim.texts_for(PARENT)) == seen.count(None)


def test_rules_for_recipients_and_reset(gateway, sim, twilio_number):
    sim.reject_recipient(PARENT, 21614)
    sim.make_undeliverable(OTHER_PARENT, 30005)
    sim.set_latency(0.05)

    with pytest.raises(GatewayError) as caught:
        gateway.send(PARENT, TWILIO_NUMBER, "hello")
    assert (caught.value.kind, caught.value.code) == (ErrorKind.INVALID_NUMBER, 21614)
    undelivered = gateway.send(OTHER_PARENT, TWILIO_NUMBER, "hello")
    sim.wait_idle()
    assert sim.message(undelivered.sid).error_code == 30005

    sim.reset_faults()
    gateway.send(PARENT, TWILIO_NUMBER, "hello")
    again = gateway.send(OTHER_PARENT, TWILIO_NUMBER, "hello")
    sim.wait_idle()
    assert [t.body for t in sim.texts_for(PARENT)] == ["hello"]
    assert sim.message(again.sid).status == "delivered"


@pytest.mark.parametrize(
    ("body", "segments"),
    [
        ("a", 1),
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # extended GSM characters take two units
        ("€" * 81, 2),
        ("Café £5", 1),
        ("🚌" * 35, 1),  # not GSM: UCS-2, an emoji takes two units
        ("🚌" * 36, 2),
        ("ł" * 70, 1),
        ("ł" * 71, 2),
    ],
)
def test_segments(body, segments):
    assert count_segments(body) == segments

from tests.relay.scenario import scenario
from tests.simulator.fixtures import gateway, live_sim, receiver, sim, twilio_number

__all__ = ["gateway", "live_sim", "receiver", "scenario", "sim", "twilio_number"]

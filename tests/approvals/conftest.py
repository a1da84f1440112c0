import pytest

from tests.approvals.staff import NOTIFY, people
from tests.relay.scenario import scenario
from tests.simulator.fixtures import live_sim, sim

__all__ = ["live_sim", "people", "scenario", "sim"]


@pytest.fixture
def app_config(app_config):
    return {**app_config, "NOTIFY_FROM": NOTIFY}

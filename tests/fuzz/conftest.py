"""Fixtures of the fuzz tests: ``fresh_scenario`` builds the relay scenario's trip again on an
emptied database, once per generated example."""

from __future__ import annotations

import pytest

from tests.fuzz.support import empty_database
from tests.relay.scenario import build_scenario
from tripcomms.relay.endpoints import PROVIDERS


@pytest.fixture
def fresh_scenario(app, client, factory, migrated_database, monkeypatch):
    """Call it to get the ``scenario`` fixture's trip on a database emptied first."""
    current = []

    def provider(trip, at):
        s = current[-1] if current else None
        return list(s.endpoints.values()) if s is not None and trip.id == s.trip_id else []

    monkeypatch.setattr("tripcomms.relay.endpoints.PROVIDERS", [*PROVIDERS, provider])

    def make():
        empty_database(app, migrated_database)
        current.append(build_scenario(app, client, factory))
        return current[-1]

    return make


__all__ = ["fresh_scenario"]

"""A local stand-in for Twilio, for the demo, development and tests.

It exists only when ``SMS_BACKEND == "simulator"``: then ``register_simulator`` mounts the
simulated REST API at ``/sim/twilio``, the simulated handsets' pages at ``/sim/phones``, and
keeps a ``Simulator`` in ``app.extensions["simulator"]``. With the ``twilio`` backend none of
its routes exist.

Its state lives in the memory of one process, so it suits the single-process demo and tests,
not several workers.
"""

from __future__ import annotations

from flask import Flask

from tripcomms.simulator.core import Simulator
from tripcomms.simulator.records import HandsetText, InboundResult, SimulatorError

__all__ = [
    "HandsetText",
    "InboundResult",
    "Simulator",
    "SimulatorError",
    "get_simulator",
    "register_simulator",
]


def register_simulator(app: Flask) -> None:
    """Mount the simulator when the backend is "simulator"; otherwise do nothing.

    Starts no thread and opens no connection: its workers start on first use. Numbers listed
    in the optional ``SIMULATOR_NUMBERS`` setting are given to the simulated account.
    """
    if app.config.get("SMS_BACKEND") != "simulator":
        return
    from tripcomms.extensions import csrf
    from tripcomms.simulator.api import bp
    from tripcomms.simulator.handsets import bp as handsets_bp

    sim = Simulator(
        app.config, delivery_delay=float(app.config.get("SIMULATOR_DELIVERY_DELAY", 0.1))
    )
    for number in app.config.get("SIMULATOR_NUMBERS") or ():
        sim.add_number(number)
    # Twilio's library cannot send a CSRF token; Basic auth protects these routes instead.
    csrf.exempt(bp)
    app.register_blueprint(bp)
    # The handset pages are for people: their forms carry CSRF tokens like every other form.
    app.register_blueprint(handsets_bp)
    app.extensions["simulator"] = sim


def get_simulator(app: Flask) -> Simulator:
    """The app's Simulator. Raises LookupError when the backend is not "simulator"."""
    try:
        return app.extensions["simulator"]
    except KeyError:
        raise LookupError("the SMS backend is not the simulator") from None

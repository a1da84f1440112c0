"""The simulator in a process of its own, standing in for Twilio beside a real deployment.

    TRIPCOMMS_TWILIO_ACCOUNT_SID=AC... TRIPCOMMS_TWILIO_AUTH_TOKEN=... \\
    TRIPCOMMS_PUBLIC_BASE_URL=http://127.0.0.1:8000 TRIPCOMMS_SIMULATOR_NUMBERS='["+44..."]' \\
    python -m tripcomms.simulator.standalone --port 8901

The app (any number of processes, with ``SMS_BACKEND = "twilio"``) reaches it through
``TWILIO_API_BASE_URL = http://127.0.0.1:8901/sim/twilio``; it posts status callbacks where each
message asks and inbound webhooks to ``PUBLIC_BASE_URL``, the app's address, signed with the
same auth token. Its state is in memory, so it is one process (a threaded server); the control
routes (``/sim/twilio/control/<account sid>/...``) set its faults and report what it saw.

It serves only the simulated REST API: no database, no handset pages, no sign-in.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from typing import Any

from flask import Flask
from werkzeug.serving import make_server

from tripcomms.config import ConfigError
from tripcomms.simulator.core import Simulator

TWILIO_READ_TIMEOUT = 15.0  # Twilio's own timeout for a webhook or status callback
REQUIRED = ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "PUBLIC_BASE_URL")


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """The simulated Twilio API alone. Settings from TRIPCOMMS_* variables, then ``config``:
    TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and PUBLIC_BASE_URL (the app's address) are
    required; SIMULATOR_NUMBERS, SIMULATOR_DELIVERY_DELAY (s, 0.1) and SIMULATOR_WORKERS
    (threads delivering and posting callbacks, 16) are optional.

    Raises ConfigError naming a missing setting. Starts no thread.
    """
    from tripcomms.simulator.api import bp

    app = Flask(__name__)
    app.config.from_prefixed_env("TRIPCOMMS")
    if config:
        app.config.update(config)
    missing = [name for name in REQUIRED if not app.config.get(name)]
    if missing:
        raise ConfigError(f"the standalone simulator needs {', '.join(missing)}")
    app.config["PUBLIC_BASE_URL"] = str(app.config["PUBLIC_BASE_URL"]).rstrip("/")
    sim = Simulator(
        app.config,
        delivery_delay=float(app.config.get("SIMULATOR_DELIVERY_DELAY", 0.1)),
        callback_timeout=TWILIO_READ_TIMEOUT,
        workers=int(app.config.get("SIMULATOR_WORKERS", 16)),
    )
    for number in app.config.get("SIMULATOR_NUMBERS") or ():
        sim.add_number(number)
    app.register_blueprint(bp)
    app.extensions["simulator"] = sim
    return app


def _interrupt(*_: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Serve the Twilio simulator on its own.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8901)
    args = parser.parse_args(argv)
    try:
        app = create_app()
    except ConfigError as err:
        print(f"Error: {err.message}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request
    server = make_server(args.host, args.port, app, threaded=True)
    # SIGTERM ends the process as Ctrl+C does (pending callbacks are dropped).
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"simulator listening on http://{args.host}:{server.server_port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        app.extensions["simulator"].close()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())

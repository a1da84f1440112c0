"""The simulated Twilio REST API at ``/sim/twilio``: the paths the twilio library calls.

Every route takes HTTP Basic auth with the configured account sid and token, as Twilio does,
and every error is in Twilio's JSON shape so that the library raises TwilioRestException.
"""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from tripcomms.simulator.core import SIMULATOR_PATH, Simulator
from tripcomms.simulator.records import API_VERSION, ApiError

bp = Blueprint("simulator", __name__, url_prefix=SIMULATOR_PATH)
ACCOUNT = f"/{API_VERSION}/Accounts/<account_sid>"


def simulator() -> Simulator:
    return current_app.extensions["simulator"]


def _error(err: ApiError) -> Response:
    response = jsonify(err.payload())
    response.status_code = err.status
    return response


@bp.errorhandler(ApiError)
def _api_error(err: ApiError) -> Response:
    return _error(err)


@bp.before_request
def _authenticate() -> Response | None:
    if request.endpoint == "simulator.media":
        # Counted before the credentials are checked: any attempt to fetch media matters.
        simulator().record_media_fetch()
    auth = request.authorization
    account_sid = (request.view_args or {}).get("account_sid", "")
    if auth is None or auth.type != "basic":
        username = password = None
    else:
        username, password = auth.username, auth.password
    if simulator().authenticates(username, password, account_sid):
        return None
    response = _error(ApiError(20003))
    response.headers["WWW-Authenticate"] = 'Basic realm="Twilio API"'
    return response


@bp.post(f"{ACCOUNT}/Messages.json")
def create_message(account_sid: str):
    sim = simulator()
    with sim.api_call() as arrived:
        payload = sim.create_message(request.form, requested_at=arrived)
    return jsonify(payload), 201


@bp.get(f"{ACCOUNT}/Messages.json")
def list_messages(account_sid: str):
    sim = simulator()
    page = request.args.get("Page", 0, type=int)
    page_size = request.args.get("PageSize", 50, type=int)
    with sim.api_call():
        return jsonify(sim.list_messages(page, page_size, request.args))


@bp.get(f"{ACCOUNT}/Messages/<sid>.json")
def fetch_message(account_sid: str, sid: str):
    sim = simulator()
    with sim.api_call():
        return jsonify(sim.fetch_message(sid))


@bp.get(f"{ACCOUNT}/Messages/<sid>/Media/<media_sid>")
def media(account_sid: str, sid: str, media_sid: str):
    # The simulator keeps no media: texts' pictures are never fetched by tripcomms.
    raise ApiError(20404)


@bp.get(f"{ACCOUNT}/IncomingPhoneNumbers.json")
def list_numbers(account_sid: str):
    sim = simulator()
    page = request.args.get("Page", 0, type=int)
    page_size = request.args.get("PageSize", 50, type=int)
    with sim.api_call():
        return jsonify(sim.list_numbers(page, page_size, request.args.get("PhoneNumber")))


@bp.get(f"{ACCOUNT}/IncomingPhoneNumbers/<sid>.json")
def fetch_number(account_sid: str, sid: str):
    sim = simulator()
    with sim.api_call():
        return jsonify(sim.fetch_number(sid))


@bp.post(f"{ACCOUNT}/IncomingPhoneNumbers/<sid>.json")
def update_number(account_sid: str, sid: str):
    sim = simulator()
    with sim.api_call():
        return jsonify(sim.update_number(sid, request.form))


# --- Control: for long runs driving the simulator in another process -------------------------
# Not part of Twilio's API. Protected by the same Basic auth; they exist only where the
# simulator does (the "simulator" backend, or the standalone server).

CONTROL = "/control/<account_sid>"
MAX_IDLE_WAIT = 300.0


def _control_error(message: str) -> Response:
    response = jsonify({"error": message})
    response.status_code = 400
    return response


def _number(value: object, name: str, *, maximum: float) -> float:
    """A JSON number between 0 and ``maximum``. Raises ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, not {value!r}")
    if not 0 <= value <= maximum:
        raise ValueError(f"{name} must be between 0 and {maximum:g}, not {value!r}")
    return float(value)


@bp.post(f"{CONTROL}/faults")
def control_faults(account_sid: str):
    """Set random faults and latency from JSON: ``{"rates": {"429": 0.1, "500": 0.05},
    "seed": 7, "latency": 0.1}`` (each key optional). All or nothing: a bad value answers 400
    with the reason and changes nothing."""
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        return _control_error('send a JSON object such as {"rates": {"429": 0.1}}')
    unknown = sorted(set(data) - {"rates", "seed", "latency"})
    if unknown:
        return _control_error(f"unknown keys: {', '.join(unknown)}; use rates, seed, latency")
    try:
        latency = _number(data["latency"], "latency", maximum=60) if "latency" in data else None
        seed = data.get("seed")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ValueError(f"seed must be a whole number, not {seed!r}")
        rates = data.get("rates")
        if rates is not None:
            if not isinstance(rates, dict):
                raise ValueError('rates must be an object such as {"429": 0.1, "500": 0.05}')
            rates = {str(k): _number(v, f"the rate for {k}", maximum=1) for k, v in rates.items()}
            simulator().set_fault_rates(rates, seed)
    except ValueError as err:
        return _control_error(str(err))
    if latency is not None:
        simulator().set_latency(latency)
    return jsonify({"ok": True})


@bp.get(f"{CONTROL}/report")
def control_report(account_sid: str):
    """What the simulator saw: see ``Simulator.report``."""
    return jsonify(simulator().report())


@bp.post(f"{CONTROL}/wait-idle")
def control_wait_idle(account_sid: str):
    """Wait (``{"timeout": seconds}``, at most 300) until no delivery, callback or API call is
    pending: 200 ``{"idle": true}``, or 409 with how many jobs are still pending."""
    data = request.get_json(silent=True) or {}
    try:
        timeout = _number(data.get("timeout", 10), "timeout", maximum=MAX_IDLE_WAIT)
    except ValueError as err:
        return _control_error(str(err))
    sim = simulator()
    try:
        sim.wait_idle(timeout)
    except TimeoutError:
        response = jsonify({"idle": False, "busy": sim.report()["busy"]})
        response.status_code = 409
        return response
    return jsonify({"idle": True})

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
    with sim.api_call():
        payload = sim.create_message(request.form)
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

"""The simulator's JSON against a trimmed copy of Twilio's OpenAPI spec (2010-04-01).

Every property of the spec's schema must be present, with the spec's type (or null where the
spec allows it), enum value, sid pattern and date format; and nothing beyond the spec.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.simulator.fixtures import AUTH_TOKEN, PARENT, TWILIO_NUMBER
from tripcomms.simulator.records import SimMessage, message_json

SPEC = json.loads((Path(__file__).parent / "twilio_spec_subset.json").read_text())["schemas"]
SID = "AC" + "1" * 32
AUTH = (SID, AUTH_TOKEN)
TYPES = {"string": str, "integer": int, "boolean": bool, "object": dict, "array": list}


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    if "$ref" in schema:
        return SPEC[schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def problems(value: Any, schema: dict[str, Any], where: str) -> list[str]:
    """Every way ``value`` departs from ``schema`` (a small subset of JSON Schema)."""
    schema = resolve(schema)
    if value is None:
        return [] if schema.get("nullable", False) else [f"{where} is null"]
    expected = TYPES[schema["type"]]
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        return [f"{where} is {type(value).__name__}, not {schema['type']}"]
    found = []
    if "enum" in schema and value not in schema["enum"]:
        found.append(f"{where}={value!r} is not one of {schema['enum']}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        found.append(f"{where}={value!r} does not match {schema['pattern']}")
    if schema.get("format") == "date-time-rfc-2822":
        try:
            parsedate_to_datetime(value)
        except (TypeError, ValueError):
            found.append(f"{where}={value!r} is not an RFC 2822 date")
    if schema.get("format") == "phone-number" and not re.fullmatch(r"\+\d{7,15}", value):
        found.append(f"{where}={value!r} is not an E.164 number")
    if "properties" in schema and schema["type"] == "object":
        properties = schema["properties"]
        found += [f"{where}.{k} is missing" for k in properties if k not in value]
        found += [f"{where}.{k} is not in the spec" for k in value if k not in properties]
        for key in properties.keys() & value.keys():
            found += problems(value[key], properties[key], f"{where}.{key}")
    if schema["type"] == "array":
        for index, item in enumerate(value):
            found += problems(item, schema["items"], f"{where}[{index}]")
    return found


def test_the_checker_finds_departures():
    schema = SPEC["api.v2010.account.message"]
    moment = datetime.now(UTC)
    good = message_json(
        SimMessage(
            "SM" + "a" * 32, TWILIO_NUMBER, PARENT, "hi", "outbound-api", "queued", moment, moment
        ),
        SID,
    )
    assert problems(good, schema, "m") == []
    assert "m.body is missing" in problems({}, schema, "m")
    pattern = schema["properties"]["sid"]["pattern"]
    assert problems({**good, "sid": "XX1"}, schema, "m") == [
        f"m.sid='XX1' does not match {pattern}"
    ]
    assert problems({**good, "status": "lost"}, schema, "m")
    assert problems({**good, "status": None}, schema, "m") == ["m.status is null"]
    assert problems({**good, "error_code": "30003"}, schema, "m")
    assert problems({**good, "date_created": "yesterday"}, schema, "m")
    assert problems({**good, "surprise": 1}, schema, "m") == ["m.surprise is not in the spec"]


@pytest.fixture
def api(live_sim) -> str:
    return f"{live_sim}/sim/twilio/2010-04-01/Accounts/{SID}"


def test_message_create_and_fetch_follow_the_spec(api, sim, twilio_number):
    sim.make_undeliverable(PARENT)
    form = {"To": PARENT, "From": TWILIO_NUMBER, "Body": "Back at 3"}
    created = requests.post(api + "/Messages.json", data=form, auth=AUTH, timeout=5).json()
    sim.wait_idle()
    fetched = requests.get(f"{api}/Messages/{created['sid']}.json", auth=AUTH, timeout=5).json()

    schema = SPEC["api.v2010.account.message"]
    assert problems(created, schema, "created") == []
    assert problems(fetched, schema, "fetched") == []
    assert (fetched["status"], fetched["error_code"]) == ("undelivered", 30003)
    assert fetched["error_message"] == "Unreachable destination handset"
    assert fetched["date_sent"] is not None


def test_inbound_and_reply_messages_follow_the_spec(api, sim, receiver):
    sid = sim.add_number(TWILIO_NUMBER)
    sim.update_number(sid, {"SmsUrl": receiver.url + "/sms"})
    receiver.twiml = "<Response><Message>Got it</Message></Response>"
    inbound = sim.send_from_handset(PARENT, TWILIO_NUMBER, "hello", ["image/jpeg"])
    reply_sid = sim.texts_for(PARENT)[-1].sid

    schema = SPEC["api.v2010.account.message"]
    for message_sid, direction in [(inbound.sid, "inbound"), (reply_sid, "outbound-reply")]:
        message = requests.get(f"{api}/Messages/{message_sid}.json", auth=AUTH, timeout=5).json()
        assert problems(message, schema, direction) == []
        assert message["direction"] == direction


def test_number_list_and_update_follow_the_spec(api, sim):
    sid = sim.add_number(TWILIO_NUMBER)
    sim.add_number("+447712345600")

    listing = requests.get(api + "/IncomingPhoneNumbers.json?PageSize=1", auth=AUTH, timeout=5)
    updated = requests.post(
        f"{api}/IncomingPhoneNumbers/{sid}.json",
        data={"SmsUrl": "https://t.example/sms", "SmsMethod": "POST"},
        auth=AUTH,
        timeout=5,
    )

    assert problems(listing.json(), SPEC["ListIncomingPhoneNumberResponse"], "list") == []
    assert listing.json()["next_page_uri"]
    assert problems(updated.json(), SPEC["api.v2010.account.incoming_phone_number"], "pn") == []


def test_message_list_follows_the_spec(api, sim, twilio_number):
    for body in ("Back at 3", "Back at 4"):
        form = {"To": PARENT, "From": TWILIO_NUMBER, "Body": body}
        requests.post(api + "/Messages.json", data=form, auth=AUTH, timeout=5)
    sim.wait_idle()

    listing = requests.get(
        api + "/Messages.json",
        params={"To": PARENT, "From": TWILIO_NUMBER, "DateSent>": "2020-01-01", "PageSize": 1},
        auth=AUTH,
        timeout=5,
    ).json()

    assert problems(listing, SPEC["ListMessageResponse"], "list") == []
    assert [m["body"] for m in listing["messages"]] == ["Back at 4"]
    assert listing["next_page_uri"]

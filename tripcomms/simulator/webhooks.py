"""What the simulator sends to the app: signed form posts, and the TwiML it reads back."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass

import requests
from twilio.request_validator import RequestValidator

USER_AGENT = "TwilioProxy/1.1"
SIGNATURES = ("valid", "bad", "missing")


def signature_for(auth_token: str, url: str, params: dict[str, str]) -> str:
    """``X-Twilio-Signature`` as Twilio computes it for a form POST to ``url``."""
    return RequestValidator(auth_token).compute_signature(url, params)


def signed_post(
    url: str,
    params: dict[str, str],
    *,
    auth_token: str,
    timeout: float,
    signature: str = "valid",
    idempotency_token: str | None = None,
) -> requests.Response:
    """POST ``params`` form-encoded to ``url`` as Twilio would.

    ``signature`` is ``valid``, ``bad`` (signed with another token) or ``missing``.
    Raises ValueError for another value and requests' exceptions when the post fails.
    """
    if signature not in SIGNATURES:
        raise ValueError(f"signature must be one of {SIGNATURES}, not {signature!r}")
    headers = {"User-Agent": USER_AGENT}
    if signature == "valid":
        headers["X-Twilio-Signature"] = signature_for(auth_token, url, params)
    elif signature == "bad":
        headers["X-Twilio-Signature"] = signature_for(auth_token + "-wrong", url, params)
    if idempotency_token:
        headers["I-Twilio-Idempotency-Token"] = idempotency_token
    return requests.post(url, data=params, headers=headers, timeout=timeout)


@dataclass(frozen=True)
class TwimlMessage:
    """A ``<Message>`` verb: its text, and the ``to``/``from`` attributes if given."""

    body: str
    to: str | None = None
    from_: str | None = None


def twiml_messages(text: str) -> list[TwimlMessage]:
    """The ``<Message>`` verbs of a TwiML ``<Response>``; [] for anything that is not TwiML."""
    if "<Response" not in text:
        return []
    try:
        # The document is the answer of the app under test, on the same machine.
        root = ET.fromstring(text)  # noqa: S314
    except ET.ParseError:
        return []
    if root.tag != "Response":
        return []
    return [_message(element) for element in root.iter("Message")]


def _message(element: ET.Element) -> TwimlMessage:
    bodies = element.findall("Body")
    body = "".join(b.text or "" for b in bodies) if bodies else (element.text or "")
    return TwimlMessage(body=body, to=element.get("to"), from_=element.get("from"))

"""The simulator's in-memory records and their JSON in the shapes of Twilio's 2010-04-01 API."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, Literal, NamedTuple

import phonenumbers

API_VERSION = "2010-04-01"
E164 = re.compile(r"^\+[1-9]\d{6,14}$")
MAX_BODY_LENGTH = 1600

# Twilio's REST error codes the simulator answers with: code -> (HTTP status, message).
# Messages never quote a number, so nothing personal reaches a client's exception text.
API_ERRORS: dict[int, tuple[int, str]] = {
    20003: (401, "Authenticate"),
    20404: (404, "The requested resource was not found"),
    20429: (429, "Too Many Requests"),
    20500: (500, "Internal Server Error"),
    20503: (503, "Service Unavailable"),
    21211: (400, "The 'To' number is not a valid phone number."),
    21602: (400, "Message body is required."),
    21604: (400, "A 'To' phone number is required."),
    21606: (
        400,
        "The 'From' phone number provided is not a valid message-capable Twilio phone "
        "number for this destination/account.",
    ),
    21610: (400, "Attempt to send to unsubscribed recipient"),
    21614: (400, "'To' number is not a valid mobile number"),
    21617: (400, "The concatenated message body exceeds the 1600 character limit."),
}

# Delivery errors, reported on the Message and in the status callback.
DELIVERY_ERRORS: dict[int, str] = {
    30003: "Unreachable destination handset",
    30004: "Message blocked",
    30005: "Unknown destination handset",
    30006: "Landline or unreachable carrier",
    30007: "Message filtered",
    30008: "Unknown error",
}

FINAL_STATUSES = frozenset({"delivered", "undelivered", "failed"})


class ApiError(Exception):
    """An error answer of the simulated REST API, in Twilio's shape."""

    def __init__(self, code: int, status: int | None = None, message: str | None = None):
        known_status, known_message = API_ERRORS.get(code, (400, f"Error {code}"))
        self.code = code
        self.status = status or known_status
        self.message = message or known_message
        super().__init__(f"{self.status} {self.code}: {self.message}")

    def payload(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "more_info": f"https://www.twilio.com/docs/errors/{self.code}",
            "status": self.status,
        }


class SimulatorError(ValueError):
    """A simulator helper was called with something the simulated account does not have."""


def now() -> datetime:
    return datetime.now(UTC)


def rfc2822(moment: datetime | None) -> str | None:
    """Twilio's date format: ``Thu, 30 Jul 2015 23:19:04 +0000``."""
    return format_datetime(moment.replace(microsecond=0)) if moment else None


def new_sid(prefix: str) -> str:
    return prefix + secrets.token_hex(16)


def is_valid_e164(number: str) -> bool:
    """A full international number that exists (per ``phonenumbers``), as Twilio checks To."""
    if not E164.match(number or ""):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return False


def country_of(number: str) -> str:
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number, None)) or ""
    except phonenumbers.NumberParseException:
        return ""


_GSM_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡"
    "ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
_GSM_EXTENDED = set("^{}\\[~]|€\f")


def count_segments(body: str) -> int:
    """SMS segments of ``body``: 160/153 GSM-7 units, else 70/67 UCS-2 units."""
    if all(c in _GSM_BASIC or c in _GSM_EXTENDED for c in body):
        units = sum(2 if c in _GSM_EXTENDED else 1 for c in body)
        single, part = 160, 153
    else:
        units = len(body.encode("utf-16-le")) // 2
        single, part = 70, 67
    return 1 if units <= single else -(-units // part)


@dataclass
class SimNumber:
    """One of the account's IncomingPhoneNumbers."""

    sid: str
    phone_number: str
    friendly_name: str
    date_created: datetime
    date_updated: datetime
    sms_url: str = ""
    sms_method: str = "POST"
    status_callback: str = ""
    status_callback_method: str = "POST"


@dataclass
class SimMessage:
    """A Message resource, outbound (API or TwiML reply) or inbound."""

    sid: str
    from_: str
    to: str
    body: str
    direction: str
    status: str
    date_created: datetime
    date_updated: datetime
    status_callback: str | None = None
    date_sent: datetime | None = None
    error_code: int | None = None
    num_media: int = 0
    num_segments: int = 1
    requested_at: datetime | None = None  # when the API call that created it arrived


@dataclass(frozen=True)
class HandsetText:
    """A text as a simulated phone shows it: ``received`` by it or ``sent`` from it."""

    sid: str
    at: datetime
    direction: Literal["received", "sent"]
    from_: str
    to: str
    body: str
    status: str
    media_types: tuple[str, ...] = ()


@dataclass(frozen=True)
class CallbackRecord:
    """What became of one status callback: delivered on some attempt, or dropped."""

    sid: str
    status: str
    url: str
    attempts: int
    http_status: int | None
    delivered: bool


@dataclass(frozen=True)
class CreateCall:
    """One call to Messages create and its answer (sid None when it failed)."""

    http_status: int
    code: int | None
    sid: str | None


class InboundResult(NamedTuple):
    """The answer the app gave to an inbound webhook."""

    sid: str
    status: int
    body: str


@dataclass
class InboundWebhook:
    """An inbound webhook as first posted, kept so that it can be posted again (a retry)."""

    url: str
    params: dict[str, str]
    idempotency_token: str
    handset: str
    twilio_number: str
    replies: list[str] = field(default_factory=list)


def message_json(message: SimMessage, account_sid: str) -> dict[str, Any]:
    """A Message as Twilio's API shows it."""
    uri = f"/{API_VERSION}/Accounts/{account_sid}/Messages/{message.sid}"
    error_message = None
    if message.error_code is not None:
        error_message = (
            DELIVERY_ERRORS.get(message.error_code)
            or API_ERRORS.get(message.error_code, (0, None))[1]
        )
    return {
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": message.body,
        "date_created": rfc2822(message.date_created),
        "date_sent": rfc2822(message.date_sent),
        "date_updated": rfc2822(message.date_updated),
        "direction": message.direction,
        "error_code": message.error_code,
        "error_message": error_message,
        "from": message.from_,
        "messaging_service_sid": None,
        "num_media": str(message.num_media),
        "num_segments": str(message.num_segments),
        "price": None,
        "price_unit": "GBP",
        "sid": message.sid,
        "status": message.status,
        "subresource_uris": {"media": f"{uri}/Media.json", "feedback": f"{uri}/Feedback.json"},
        "to": message.to,
        "uri": f"{uri}.json",
    }


def number_json(number: SimNumber, account_sid: str) -> dict[str, Any]:
    """An IncomingPhoneNumber as Twilio's API shows it."""
    return {
        "account_sid": account_sid,
        "address_requirements": "none",
        "address_sid": None,
        "api_version": API_VERSION,
        "beta": False,
        "bundle_sid": None,
        "capabilities": {"fax": False, "mms": True, "sms": True, "voice": True},
        "date_created": rfc2822(number.date_created),
        "date_updated": rfc2822(number.date_updated),
        "emergency_address_sid": None,
        "emergency_address_status": "unregistered",
        "emergency_status": "Inactive",
        "friendly_name": number.friendly_name,
        "identity_sid": None,
        "origin": "twilio",
        "phone_number": number.phone_number,
        "sid": number.sid,
        "sms_application_sid": None,
        "sms_fallback_method": "POST",
        "sms_fallback_url": "",
        "sms_method": number.sms_method,
        "sms_url": number.sms_url,
        "status": "in-use",
        "status_callback": number.status_callback,
        "status_callback_method": number.status_callback_method,
        "trunk_sid": None,
        "type": "mobile",
        "uri": f"/{API_VERSION}/Accounts/{account_sid}/IncomingPhoneNumbers/{number.sid}.json",
        "voice_application_sid": None,
        "voice_caller_id_lookup": False,
        "voice_fallback_method": "POST",
        "voice_fallback_url": None,
        "voice_method": "POST",
        "voice_receive_mode": "voice",
        "voice_url": None,
    }

"""The SMS gateway: sends texts and manages the account's numbers through Twilio's REST API.

``TwilioGateway`` runs the real ``twilio`` library. With ``SMS_BACKEND = "simulator"`` it is
pointed at the local simulator (``PUBLIC_BASE_URL + /sim/twilio``), so tests and the demo take
the same code path as production. The gateway never retries: it classifies each failure as a
``GatewayError`` of one ``ErrorKind`` and the outbox decides what to do.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

import requests
from twilio.base.exceptions import (
    TwilioException,
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http.http_client import TwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client
from urllib3.exceptions import NewConnectionError

from tripcomms.config import ConfigError
from tripcomms.mobile import mask_number

log = logging.getLogger(__name__)

DEFAULT_API_BASE_URL = "https://api.twilio.com"
SIMULATOR_PATH = "/sim/twilio"

OPTED_OUT_CODES = frozenset({21610})
INVALID_NUMBER_CODES = frozenset({21211, 21614})


class SendResult(NamedTuple):
    sid: str
    status: str


class SentMessage(NamedTuple):
    """A text the account already sent, as the Messages list shows it."""

    sid: str
    status: str
    date_created: datetime


@dataclass(frozen=True)
class IncomingNumber:
    """One of the account's Twilio numbers and where it sends its webhooks."""

    sid: str
    phone_number: str
    sms_url: str | None
    status_callback: str | None


class ErrorKind(StrEnum):
    RETRYABLE = "retryable"  # 429, 5xx, timeout, connection error: try again later
    OPTED_OUT = "opted_out"  # 21610: the recipient texted STOP to this number
    INVALID_NUMBER = "invalid_number"  # 21211, 21614: the number cannot receive texts
    REJECTED = "rejected"  # any other refusal: do not retry


_KIND_TEXT = {
    ErrorKind.RETRYABLE: "Twilio could not take the request now",
    ErrorKind.OPTED_OUT: "the recipient has opted out of texts from this number",
    ErrorKind.INVALID_NUMBER: "the recipient's number cannot receive texts",
    ErrorKind.REJECTED: "Twilio refused the request",
}


class GatewayError(Exception):
    """A call to Twilio failed. ``kind`` says what to do about it.

    ``code`` is Twilio's error code and ``http_status`` the HTTP status, each None when there
    was no answer (timeout, connection error). ``outcome_unknown`` is true when the request may
    have reached Twilio and no answer came back (a read timeout, a connection dropped after
    sending): Twilio may have acted on it. A 429 or 5xx answer, or a connection that was never
    made, leaves it false. The message never holds a number or a body.
    """

    def __init__(
        self,
        kind: ErrorKind,
        message: str,
        *,
        code: int | None = None,
        http_status: int | None = None,
        outcome_unknown: bool = False,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.code = code
        self.http_status = http_status
        self.outcome_unknown = outcome_unknown
        self.message = message

    @property
    def retryable(self) -> bool:
        return self.kind is ErrorKind.RETRYABLE


def classify(http_status: int | None, code: int | None) -> ErrorKind:
    """The kind of a failed call, from its HTTP status and Twilio error code."""
    if http_status is None or http_status == 429 or http_status >= 500:
        return ErrorKind.RETRYABLE
    if code in OPTED_OUT_CODES:
        return ErrorKind.OPTED_OUT
    if code in INVALID_NUMBER_CODES:
        return ErrorKind.INVALID_NUMBER
    return ErrorKind.REJECTED


def _api_error(action: str, http_status: int, code: object) -> GatewayError:
    # Without a Twilio error body the library puts the HTTP status in ``code``; Twilio's own
    # codes have five digits, so a smaller one is no code at all.
    twilio_code = code if isinstance(code, int) and code >= 10000 else None
    kind = classify(http_status, twilio_code)
    detail = f"HTTP {http_status}" + (f", Twilio error {twilio_code}" if twilio_code else "")
    return GatewayError(
        kind, f"{action}: {_KIND_TEXT[kind]} ({detail})", code=twilio_code, http_status=http_status
    )


def _page_error(action: str, exc: TwilioException) -> GatewayError:
    """A list page that failed: the library raises a bare TwilioException carrying the
    response, so the status and code are read from that response."""
    response = exc.args[1] if len(exc.args) > 1 else None
    if not isinstance(response, Response):
        return GatewayError(ErrorKind.REJECTED, f"{action}: the Twilio library refused the call")
    try:
        code = json.loads(response.text).get("code")
    except (ValueError, AttributeError):
        code = None
    return _api_error(action, int(response.status_code), code)


def _never_reached_twilio(exc: requests.RequestException) -> bool:
    """True when the request cannot have reached Twilio: the connection was never made (refused,
    no such host, the connect timed out, the TLS handshake failed)."""
    if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
        return True
    reason = exc.args[0] if exc.args else None
    return isinstance(getattr(reason, "reason", reason), NewConnectionError)


@contextmanager
def _translated_errors(action: str) -> Iterator[None]:
    """Turn the library's and the network's exceptions into GatewayError.

    API errors are raised ``from None``: Twilio's own message can quote the phone number, and a
    logged traceback would carry it into the logs. Anything else (a bad base URL, a refused
    connection to a forbidden host in tests) propagates unchanged.
    """
    try:
        yield
    except (TwilioRestException, TwilioServiceException) as exc:
        raise _api_error(action, int(exc.status), exc.code) from None
    except TwilioException as exc:
        raise _page_error(action, exc) from None
    except requests.Timeout as exc:
        raise GatewayError(
            ErrorKind.RETRYABLE,
            f"{action}: Twilio did not answer in time",
            outcome_unknown=not _never_reached_twilio(exc),
        ) from exc
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise GatewayError(
            ErrorKind.RETRYABLE,
            f"{action}: the connection to Twilio failed",
            outcome_unknown=not _never_reached_twilio(exc),
        ) from exc


class SmsGateway(Protocol):
    """What the relay needs of an SMS provider."""

    def send(self, to: str, from_: str, body: str, status_callback: str | None) -> SendResult:
        """Hand one text to the provider; raise GatewayError when it is not accepted."""
        ...

    def find_sent(
        self, to: str, from_: str, body: str, created_after: datetime
    ) -> list[SentMessage]:
        """Texts the provider already took from ``from_`` to ``to`` with exactly ``body``,
        created at or after ``created_after``, oldest first; raise GatewayError on failure."""
        ...

    def list_numbers(self) -> list[IncomingNumber]:
        """The account's numbers; raise GatewayError on failure."""
        ...

    def configure_number(self, sid: str, sms_url: str, status_callback: str) -> None:
        """Point a number's inbound SMS (POST) and status webhooks at us."""
        ...


class TwilioGateway:
    """SmsGateway on the ``twilio`` library, with a timeout on every call and no retries.

    Safe to share between threads: each call borrows a client (with its own HTTP session)
    from a small pool, so no two threads use one session at once and connections are reused.
    Call ``close()`` (or use it as a context manager) to close the pooled connections.
    """

    def __init__(
        self,
        account_sid: str,
        auth_token: str,
        base_url: str = DEFAULT_API_BASE_URL,
        timeout: float = 10,
    ) -> None:
        if not account_sid or not auth_token:
            raise ValueError("account_sid and auth_token are required")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, not {timeout!r}")
        self.account_sid = account_sid
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self._auth_token = auth_token
        self._lock = threading.Lock()
        self._idle: list[Client] = []
        self._closed = False

    def __enter__(self) -> TwilioGateway:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close every pooled connection. Calls still running close theirs when they end."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for client in idle:
            _close_client(client)

    def _new_client(self) -> Client:
        http_client = TwilioHttpClient(timeout=self.timeout)
        # environment={}: the app's settings are the only configuration. TWILIO_EDGE or
        # TWILIO_REGION in the environment would rewrite the host (127.0.0.1 -> 127.ie1.0.1).
        client = Client(self.account_sid, self._auth_token, http_client=http_client, environment={})
        client.api.base_url = self.base_url
        return client

    @contextmanager
    def _client(self) -> Iterator[Client]:
        with self._lock:
            client = self._idle.pop() if self._idle else None
        if client is None:
            client = self._new_client()
        try:
            yield client
        finally:
            with self._lock:
                keep = not self._closed
                if keep:
                    self._idle.append(client)
            if not keep:
                _close_client(client)

    def send(
        self, to: str, from_: str, body: str, status_callback: str | None = None
    ) -> SendResult:
        """Create a Message; return its sid and first status (normally ``queued``).

        Raises GatewayError: RETRYABLE on 429, 5xx, timeout or connection error; OPTED_OUT on
        21610; INVALID_NUMBER on 21211 or 21614; REJECTED on any other refusal.
        """
        with self._client() as client, _translated_errors("send a text"):
            message = client.messages.create(
                to=to, from_=from_, body=body, status_callback=status_callback
            )
        log.info("text to %s accepted as %s (%s)", mask_number(to), message.sid, message.status)
        return SendResult(str(message.sid), str(message.status))

    def find_sent(
        self, to: str, from_: str, body: str, created_after: datetime
    ) -> list[SentMessage]:
        """Outbound API texts from ``from_`` to ``to`` whose body is exactly ``body`` and which
        Twilio created at or after ``created_after`` (aware), oldest first.

        Twilio's Messages create has no idempotency key, so this is how to learn whether a send
        whose answer never came was taken after all. It reads the Messages list filtered by To,
        From and ``DateSent>=`` the UTC day of ``created_after`` (every page), and matches the
        body and the creation time here: the list has no filter for either. Twilio's dates are
        whole seconds, so a caller gives ``created_after`` some slack. Raises GatewayError as
        ``send`` does (a failed page included).
        """
        if created_after.tzinfo is None:
            raise ValueError("created_after must be timezone-aware")
        since = created_after.astimezone(UTC)
        with self._client() as client, _translated_errors("look for a sent text"):
            records = client.messages.stream(
                to=to, from_=from_, date_sent_after=since.strftime("%Y-%m-%d"), page_size=100
            )
            found = [
                SentMessage(str(r.sid), str(r.status), r.date_created)
                for r in records
                if r.direction == "outbound-api"
                and r.body == body
                and isinstance(r.date_created, datetime)
                and r.date_created >= since.replace(microsecond=0)
            ]
        # The list is newest first; its order settles texts created in the same second.
        found.reverse()
        found.sort(key=lambda m: m.date_created)
        log.info("found %d earlier texts to %s", len(found), mask_number(to))
        return found

    def fetch(self, sid: str) -> SendResult:
        """The current status of a Message; raises GatewayError as ``send`` does."""
        with self._client() as client, _translated_errors("fetch a text"):
            message = client.messages(sid).fetch()
        return SendResult(str(message.sid), str(message.status))

    def list_numbers(self) -> list[IncomingNumber]:
        """Every IncomingPhoneNumber of the account (all pages); raises GatewayError."""
        with self._client() as client, _translated_errors("list the numbers"):
            records = client.incoming_phone_numbers.list()
        return [
            IncomingNumber(
                sid=str(record.sid),
                phone_number=str(record.phone_number),
                sms_url=record.sms_url or None,
                status_callback=record.status_callback or None,
            )
            for record in records
        ]

    def configure_number(self, sid: str, sms_url: str, status_callback: str) -> None:
        """Set the number's SmsUrl (POST) and StatusCallback (POST); raises GatewayError."""
        with self._client() as client, _translated_errors("configure a number"):
            client.incoming_phone_numbers(sid).update(
                sms_url=sms_url,
                sms_method="POST",
                status_callback=status_callback,
                status_callback_method="POST",
            )
        log.info("number %s now posts to %s", sid, sms_url)


def _close_client(client: Client) -> None:
    session = getattr(client.http_client, "session", None)
    if session is not None:
        session.close()


def api_base_url(config: Mapping[str, Any]) -> str:
    """Where the Twilio REST API is: TWILIO_API_BASE_URL, or the simulator when the backend is
    "simulator" and TWILIO_API_BASE_URL was left at Twilio's own address."""
    base = str(config.get("TWILIO_API_BASE_URL") or DEFAULT_API_BASE_URL).rstrip("/")
    if config.get("SMS_BACKEND") == "simulator" and base == DEFAULT_API_BASE_URL:
        return str(config["PUBLIC_BASE_URL"]).rstrip("/") + SIMULATOR_PATH
    return base


def gateway_from_config(config: Mapping[str, Any]) -> TwilioGateway:
    """A TwilioGateway built from the settings as they are now.

    Raises ConfigError when TWILIO_ACCOUNT_SID or TWILIO_AUTH_TOKEN is not set.
    """
    for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"):
        if not config.get(name):
            raise ConfigError(f"{name} is not set: the SMS gateway cannot reach Twilio")
    return TwilioGateway(
        account_sid=str(config["TWILIO_ACCOUNT_SID"]),
        auth_token=str(config["TWILIO_AUTH_TOKEN"]),
        base_url=api_base_url(config),
        timeout=float(config.get("TWILIO_TIMEOUT_SECONDS") or 10),
    )

"""The Simulator: a Twilio account, its messages and a crowd of simulated handsets, in memory.

All state sits behind one lock. Work that Twilio does later (moving a message to sent and
delivered, posting status callbacks and retrying them) runs on a Dispatcher whose threads start
on first use. Inbound texts are posted to the app from the caller's thread, so a test gets the
app's answer back directly.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, date, datetime
from functools import partial
from typing import Any
from urllib.parse import urlencode

from tripcomms.mobile import mask_number
from tripcomms.simulator.dispatcher import Dispatcher
from tripcomms.simulator.faults import FaultPlan
from tripcomms.simulator.records import (
    API_VERSION,
    FINAL_STATUSES,
    MAX_BODY_LENGTH,
    ApiError,
    CallbackRecord,
    CreateCall,
    HandsetText,
    InboundResult,
    InboundWebhook,
    SimMessage,
    SimNumber,
    SimulatorError,
    count_segments,
    country_of,
    is_valid_e164,
    message_json,
    new_sid,
    now,
    number_json,
)
from tripcomms.simulator.webhooks import TwimlMessage, signed_post, twiml_messages

log = logging.getLogger(__name__)

DEFAULT_SMS_PATH = "/twilio/sms"
SIMULATOR_PATH = "/sim/twilio"
INBOUND_TIMEOUT = 15.0  # Twilio's read timeout for an inbound webhook
OPT_OUT_WORDS = frozenset(
    {"STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT"}
)
OPT_IN_WORDS = frozenset({"START", "YES", "UNSTOP"})
MAX_PAGE_SIZE = 1000
# The Messages list's filters, in the order Twilio's page URIs give them.
DATE_SENT = ("DateSent", "DateSent<", "DateSent>")
MESSAGE_FILTERS = ("To", "From", *DATE_SENT)


def _filter_day(name: str, value: str) -> date:
    """The GMT day of a DateSent filter: ``YYYY-MM-DD``, or an ISO time such as the twilio
    library sends for a datetime (``2026-11-26T09:30:00Z``). Raises ApiError 20001."""
    text = value.strip()
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ApiError(20001, 400, f"{name} must be a date, YYYY-MM-DD") from None
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.date()


def _sent_on(message: SimMessage, name: str, day: date) -> bool:
    if message.date_sent is None:
        return False
    sent = message.date_sent.astimezone(UTC).date()
    if name == "DateSent<":
        return sent <= day
    if name == "DateSent>":
        return sent >= day
    return sent == day


def _list_page(
    path: str,
    key: str,
    items: list[dict[str, Any]],
    query: Mapping[str, str],
    page: int,
    page_size: int,
    more: bool,
) -> dict[str, Any]:
    """One page of a Twilio list resource: ``items`` under ``key``, and the paging fields with
    their URIs (``query`` is the filter the list was asked with)."""
    start = page * page_size

    def page_uri(number: int) -> str:
        return f"{path}?{urlencode({**query, 'PageSize': page_size, 'Page': number})}"

    return {
        "end": start + max(len(items) - 1, 0),
        "first_page_uri": page_uri(0),
        key: items,
        "next_page_uri": page_uri(page + 1) if more else None,
        "page": page,
        "page_size": page_size,
        "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        "start": start,
        "uri": page_uri(page),
    }


class Simulator:
    """A local stand-in for one Twilio account, driven over HTTP by the real twilio library.

    The account's sid and token, and ``PUBLIC_BASE_URL``, are read from ``config`` at each use,
    so a test may change them after the app is built.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        *,
        delivery_delay: float = 0.1,
        callback_attempts: int = 3,
        callback_timeout: float = 5.0,
        callback_backoff: float = 0.2,
        workers: int = 4,
    ) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._dispatcher = Dispatcher(self._changed, workers=workers)
        self._closing = threading.Event()
        self._faults = FaultPlan()
        self._numbers: dict[str, SimNumber] = {}
        self._messages: dict[str, SimMessage] = {}
        self._handsets: dict[str, list[HandsetText]] = defaultdict(list)
        self._opted_out: set[tuple[str, str]] = set()  # (handset, twilio number)
        self._inbound: dict[str, InboundWebhook] = {}
        self._deliveries_by_sid: Counter[str] = Counter()
        self._deliveries_by_content: Counter[tuple[str, str]] = Counter()
        self._callbacks: list[CallbackRecord] = []
        self._callback_attempts: Counter[str] = Counter()  # every attempt's HTTP status
        self._create_calls: list[CreateCall] = []
        self._media_fetches = 0
        self._in_flight = 0
        self.delivery_delay = delivery_delay
        self.callback_attempts = callback_attempts
        self.callback_timeout = callback_timeout
        self.callback_backoff = callback_backoff

    # --- Settings read from the app -----------------------------------------------------

    @property
    def account_sid(self) -> str:
        return str(self._config.get("TWILIO_ACCOUNT_SID") or "")

    def _auth_token(self) -> str:
        return str(self._config.get("TWILIO_AUTH_TOKEN") or "")

    def _public_base(self) -> str:
        return str(self._config.get("PUBLIC_BASE_URL") or "").rstrip("/")

    def configure(
        self,
        *,
        delivery_delay: float | None = None,
        callback_attempts: int | None = None,
        callback_timeout: float | None = None,
        callback_backoff: float | None = None,
    ) -> None:
        """Change the pace of delivery and of callback retries (tests speed them up)."""
        with self._lock:
            if delivery_delay is not None:
                self.delivery_delay = delivery_delay
            if callback_attempts is not None:
                self.callback_attempts = max(1, callback_attempts)
            if callback_timeout is not None:
                self.callback_timeout = callback_timeout
            if callback_backoff is not None:
                self.callback_backoff = callback_backoff

    # --- The account's numbers ----------------------------------------------------------

    def add_number(self, phone_number: str, friendly_name: str | None = None) -> str:
        """Give the account a number; return its ``PN...`` sid (the same sid if it has it).

        Raises SimulatorError when ``phone_number`` is not a valid E.164 number.
        """
        if not is_valid_e164(phone_number):
            raise SimulatorError("a simulated Twilio number must be a valid E.164 number")
        with self._lock:
            existing = self._number_by_phone_locked(phone_number)
            if existing is not None:
                return existing.sid
            moment = now()
            number = SimNumber(
                sid=new_sid("PN"),
                phone_number=phone_number,
                friendly_name=friendly_name or phone_number,
                date_created=moment,
                date_updated=moment,
            )
            self._numbers[number.sid] = number
            return number.sid

    def numbers(self) -> list[SimNumber]:
        """Copies of the account's numbers, oldest first."""
        with self._lock:
            return [replace(number) for number in self._numbers.values()]

    def _number_by_phone_locked(self, phone_number: str) -> SimNumber | None:
        return next((n for n in self._numbers.values() if n.phone_number == phone_number), None)

    # --- Faults ---------------------------------------------------------------------------

    def script(self, *outcomes: str) -> None:
        """Queue outcomes for the next calls to Messages create, one call each:
        ``"ok"``, ``"429"``, ``"500"``, ``"503"``, ``"timeout"``, ``"timeout-accepted"`` or a
        Twilio error code such as ``"21610"``. Raises ValueError on an unknown outcome."""
        with self._lock:
            self._faults.add_script(outcomes)

    def set_fault_rates(self, rates: Mapping[str, float], seed: int | None = None) -> None:
        """Random outcomes for unscripted calls, e.g. ``{"429": 0.10, "500": 0.05}``, drawn
        from a generator seeded with ``seed``. Raises ValueError on a bad rate."""
        with self._lock:
            self._faults.set_rates(rates, seed)

    def set_latency(self, seconds: float) -> None:
        """Add ``seconds`` to every authenticated API call."""
        with self._lock:
            self._faults.latency = max(0.0, seconds)

    def set_timeout_sleep(self, seconds: float) -> None:
        """How long a ``timeout`` outcome sleeps before answering (make it exceed the
        client's timeout)."""
        with self._lock:
            self._faults.timeout_sleep = max(0.0, seconds)

    def reject_recipient(self, number: str, code: int = 21610) -> None:
        """Every Messages create to ``number`` answers Twilio error ``code`` (21610: opted out)."""
        with self._lock:
            self._faults.rejected_recipients[number] = code

    def make_undeliverable(self, number: str, error_code: int = 30003) -> None:
        """Texts to ``number`` are accepted, then end ``undelivered`` with ``error_code``."""
        with self._lock:
            self._faults.undeliverable_recipients[number] = error_code

    def make_deliverable(self, number: str) -> None:
        """Undo ``make_undeliverable`` for ``number`` (a handset switched back on)."""
        with self._lock:
            self._faults.undeliverable_recipients.pop(number, None)

    def undeliverable_code(self, number: str) -> int | None:
        """The error code texts to ``number`` end with, or None when they are delivered."""
        with self._lock:
            return self._faults.undeliverable_recipients.get(number)

    def reset_faults(self) -> None:
        """Back to a perfect Twilio: no script, rates, latency or recipient rules."""
        with self._lock:
            self._faults = FaultPlan()

    # --- The REST API (called by the blueprint) -------------------------------------------

    def authenticates(self, username: str | None, password: str | None, account_sid: str) -> bool:
        """HTTP Basic credentials match the configured account, and so does the URL's sid."""
        sid, token = self.account_sid, self._auth_token()
        if not sid or not token:
            return False
        checks = [(username or "", sid), (password or "", token), (account_sid or "", sid)]
        return all(hmac.compare_digest(a.encode(), b.encode()) for a, b in checks)

    @contextmanager
    def api_call(self) -> Iterator[datetime]:
        """Count an API call in flight (``wait_idle`` waits for it) and add the set latency.
        Gives the moment the call arrived, before the latency."""
        arrived = now()
        with self._lock:
            self._in_flight += 1
            latency = self._faults.latency
        try:
            if latency:
                self._closing.wait(latency)
            yield arrived
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def create_message(
        self, form: Mapping[str, str], requested_at: datetime | None = None
    ) -> dict[str, Any]:
        """Messages create: the new Message's JSON. Raises ApiError as Twilio would answer.

        ``requested_at`` is when the call arrived (``api_call`` gives it); default now."""
        with self._lock:
            outcome = self._faults.next_outcome()
            sleep = self._faults.timeout_sleep
        try:
            if outcome.kind in ("timeout", "timeout-accepted"):
                self._closing.wait(sleep)
                if outcome.kind == "timeout":
                    raise ApiError(20503)
            if outcome.kind == "error" and outcome.code is not None:
                raise ApiError(outcome.code)
            with self._lock:
                message = self._create_locked(form)
                message.requested_at = requested_at or message.date_created
                self._create_calls.append(CreateCall(201, None, message.sid))
                return message_json(message, self.account_sid)
        except ApiError as err:
            with self._lock:
                self._create_calls.append(CreateCall(err.status, err.code, None))
            raise

    def _create_locked(self, form: Mapping[str, str]) -> SimMessage:
        to = (form.get("To") or "").strip()
        from_ = (form.get("From") or "").strip()
        body = form.get("Body") or ""
        if not to:
            raise ApiError(21604)
        if not is_valid_e164(to):
            raise ApiError(21211)
        if self._number_by_phone_locked(from_) is None:
            raise ApiError(21606)
        if not body:
            raise ApiError(21602)
        if len(body) > MAX_BODY_LENGTH:
            raise ApiError(21617)
        if to in self._faults.rejected_recipients:
            raise ApiError(self._faults.rejected_recipients[to])
        if (to, from_) in self._opted_out:
            raise ApiError(21610)
        moment = now()
        message = SimMessage(
            sid=new_sid("SM"),
            from_=from_,
            to=to,
            body=body,
            direction="outbound-api",
            status="queued",
            date_created=moment,
            date_updated=moment,
            status_callback=form.get("StatusCallback") or None,
            num_segments=count_segments(body),
        )
        self._messages[message.sid] = message
        self._dispatcher.schedule_locked(
            self.delivery_delay, partial(self._advance, message.sid, "sent")
        )
        return message

    def fetch_message(self, sid: str) -> dict[str, Any]:
        """Messages fetch: the Message's JSON. Raises ApiError 20404 when there is none."""
        with self._lock:
            message = self._messages.get(sid)
            if message is None:
                raise ApiError(20404)
            return message_json(message, self.account_sid)

    def list_messages(
        self, page: int, page_size: int, filters: Mapping[str, str]
    ) -> dict[str, Any]:
        """Messages read: one page in Twilio's list shape, newest message first.

        ``filters`` are the query's ``To``, ``From`` (exact numbers) and ``DateSent``,
        ``DateSent<``, ``DateSent>`` (a GMT day, ``YYYY-MM-DD``, or a time whose day is taken:
        that day, on or before it, on or after it). A message not yet sent has no date sent, so
        a DateSent filter leaves it out. Raises ApiError 20001 on a date that does not parse.
        """
        page = max(0, page)
        page_size = min(max(1, page_size), MAX_PAGE_SIZE)
        used = {name: filters[name] for name in MESSAGE_FILTERS if filters.get(name)}
        days = {name: _filter_day(name, value) for name, value in used.items() if name in DATE_SENT}
        account_sid = self.account_sid
        with self._lock:
            matching = [
                m
                for m in reversed(self._messages.values())
                if used.get("To", m.to) == m.to
                and used.get("From", m.from_) == m.from_
                and all(_sent_on(m, name, day) for name, day in days.items())
            ]
            matching.sort(key=lambda m: m.date_created, reverse=True)
            start = page * page_size
            items = [message_json(m, account_sid) for m in matching[start : start + page_size]]
            more = start + page_size < len(matching)
        path = f"/{API_VERSION}/Accounts/{account_sid}/Messages.json"
        return _list_page(path, "messages", items, used, page, page_size, more)

    def list_numbers(self, page: int, page_size: int, phone_number: str | None) -> dict[str, Any]:
        """IncomingPhoneNumbers read: one page in Twilio's list shape, oldest number first."""
        page = max(0, page)
        page_size = min(max(1, page_size), MAX_PAGE_SIZE)
        account_sid = self.account_sid
        with self._lock:
            matching = [
                n
                for n in self._numbers.values()
                if not phone_number or n.phone_number == phone_number
            ]
            start = page * page_size
            items = [number_json(n, account_sid) for n in matching[start : start + page_size]]
            more = start + page_size < len(matching)
        path = f"/{API_VERSION}/Accounts/{account_sid}/IncomingPhoneNumbers.json"
        query = {"PhoneNumber": phone_number} if phone_number else {}
        return _list_page(path, "incoming_phone_numbers", items, query, page, page_size, more)

    def fetch_number(self, sid: str) -> dict[str, Any]:
        """IncomingPhoneNumber fetch. Raises ApiError 20404 when there is none."""
        with self._lock:
            number = self._numbers.get(sid)
            if number is None:
                raise ApiError(20404)
            return number_json(number, self.account_sid)

    def update_number(self, sid: str, form: Mapping[str, str]) -> dict[str, Any]:
        """IncomingPhoneNumber update (SmsUrl, SmsMethod, StatusCallback, ...).

        The simulator always POSTs inbound webhooks, whatever SmsMethod says.
        Raises ApiError 20404 when there is no such number.
        """
        fields = {
            "FriendlyName": "friendly_name",
            "SmsUrl": "sms_url",
            "SmsMethod": "sms_method",
            "StatusCallback": "status_callback",
            "StatusCallbackMethod": "status_callback_method",
        }
        with self._lock:
            number = self._numbers.get(sid)
            if number is None:
                raise ApiError(20404)
            for name, attribute in fields.items():
                if name in form:
                    setattr(number, attribute, form[name])
            number.date_updated = now()
            return number_json(number, self.account_sid)

    def record_media_fetch(self) -> None:
        """Someone asked for a media file (tripcomms never should: policy 31, 71)."""
        with self._lock:
            self._media_fetches += 1

    # --- Delivery and status callbacks ----------------------------------------------------

    def _advance(self, sid: str, status: str) -> None:
        """Move a message to ``status``, post its callback, then schedule the next step."""
        with self._lock:
            message = self._messages[sid]
            self._set_status_locked(message, status)
            following = self._following_status_locked(message)
            callback = self._callback_locked(message)
        after = partial(self._advance, sid, following) if following else None
        self._send_callback(callback, 1, after)

    def _set_status_locked(self, message: SimMessage, status: str) -> None:
        moment = now()
        message.status = status
        message.date_updated = moment
        if status == "sent":
            message.date_sent = moment
        elif status == "delivered":
            self._deliver_locked(message)
        elif status == "undelivered":
            message.error_code = self._faults.undeliverable_recipients.get(message.to, 30003)

    def _following_status_locked(self, message: SimMessage) -> str | None:
        if message.status in FINAL_STATUSES:
            return None
        if message.to in self._faults.undeliverable_recipients:
            return "undelivered"
        return "delivered"

    def _deliver_locked(self, message: SimMessage) -> None:
        """The text reaches the recipient's handset; count it, to prove nothing arrives twice."""
        self._handsets[message.to].append(
            HandsetText(
                sid=message.sid,
                at=message.date_updated,
                direction="received",
                from_=message.from_,
                to=message.to,
                body=message.body,
                status="delivered",
            )
        )
        self._deliveries_by_sid[message.sid] += 1
        self._deliveries_by_content[(message.to, message.body)] += 1

    def _callback_locked(self, message: SimMessage) -> tuple[str, dict[str, str], str] | None:
        if not message.status_callback:
            return None
        params = {
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
            "From": message.from_,
            "MessageSid": message.sid,
            "MessageStatus": message.status,
            "SmsSid": message.sid,
            "SmsStatus": message.status,
            "To": message.to,
        }
        if message.error_code is not None:
            params["ErrorCode"] = str(message.error_code)
        return message.status_callback, params, message.status

    def _send_callback(
        self,
        callback: tuple[str, dict[str, str], str] | None,
        attempt: int,
        after: partial[None] | None,
    ) -> None:
        """Post a signed status callback; on failure retry later, or drop it after the last
        attempt. Then schedule the message's next step, so callbacks keep their order."""
        if callback is not None:
            url, params, status = callback
            http_status: int | None = None
            try:
                response = signed_post(
                    url, params, auth_token=self._auth_token(), timeout=self.callback_timeout
                )
                http_status = response.status_code
            except Exception:
                # Whatever stops the post (refused, timed out, not allowed) is a failed attempt.
                log.debug(
                    "status callback for %s: attempt %d failed", params["MessageSid"], attempt
                )
            delivered = http_status is not None and 200 <= http_status < 300
            with self._lock:
                self._callback_attempts[str(http_status or "no answer")] += 1
            if not delivered and attempt < self.callback_attempts and not self._closing.is_set():
                retry = partial(self._send_callback, callback, attempt + 1, after)
                self._dispatcher.schedule(self.callback_backoff * 2 ** (attempt - 1), retry)
                return
            with self._lock:
                self._callbacks.append(
                    CallbackRecord(
                        params["MessageSid"], status, url, attempt, http_status, delivered
                    )
                )
            if not delivered:
                log.warning(
                    "status callback %s for %s dropped after %d attempts (%s)",
                    status,
                    params["MessageSid"],
                    attempt,
                    f"HTTP {http_status}" if http_status else "no answer",
                )
        if after is not None:
            self._dispatcher.schedule(self.delivery_delay, after)

    # --- Inbound texts ----------------------------------------------------------------------

    def send_from_handset(
        self,
        from_number: str,
        to_number: str,
        body: str,
        media_types: tuple[str, ...] | list[str] = (),
        *,
        signature: str = "valid",
    ) -> InboundResult:
        """A handset texts one of the account's numbers: post the inbound webhook to that
        number's SmsUrl (or ``PUBLIC_BASE_URL/twilio/sms``) and deliver any TwiML
        ``<Message>`` replies. ``signature`` is ``valid``, ``bad`` or ``missing``.

        STOP-type keywords opt the handset out of that number (later sends answer 21610) and
        START-type keywords opt it back in, as Twilio does. Raises SimulatorError when
        ``to_number`` is not the account's, and requests' exceptions when the post fails.
        """
        with self._lock:
            number = self._number_by_phone_locked(to_number)
            if number is None:
                raise SimulatorError("that number is not one of the simulated account's numbers")
            webhook = self._receive_locked(number, from_number, body, tuple(media_types))
        log.info("inbound text %s from %s", webhook.params["MessageSid"], mask_number(from_number))
        return self._post_inbound(webhook, signature)

    def repost(self, sid: str, *, signature: str = "valid") -> InboundResult:
        """Post an inbound webhook again, exactly as before (a Twilio retry).

        Raises SimulatorError when no inbound text has that sid.
        """
        with self._lock:
            webhook = self._inbound.get(sid)
        if webhook is None:
            raise SimulatorError("no inbound text has that sid")
        return self._post_inbound(webhook, signature)

    def _receive_locked(
        self, number: SimNumber, handset: str, body: str, media_types: tuple[str, ...]
    ) -> InboundWebhook:
        sid = new_sid("SM")
        moment = now()
        base = self._public_base()
        params = {
            "ToCountry": country_of(number.phone_number),
            "ToState": "",
            "ToCity": "",
            "ToZip": "",
            "FromCountry": country_of(handset),
            "FromState": "",
            "FromCity": "",
            "FromZip": "",
            "SmsMessageSid": sid,
            "SmsSid": sid,
            "MessageSid": sid,
            "SmsStatus": "received",
            "NumMedia": str(len(media_types)),
            "NumSegments": str(count_segments(body)),
            "To": number.phone_number,
            "From": handset,
            "Body": body,
            "AccountSid": self.account_sid,
            "ApiVersion": API_VERSION,
        }
        media_base = f"{base}{SIMULATOR_PATH}/{API_VERSION}/Accounts/{self.account_sid}"
        for index, content_type in enumerate(media_types):
            params[f"MediaContentType{index}"] = content_type
            params[f"MediaUrl{index}"] = f"{media_base}/Messages/{sid}/Media/{new_sid('ME')}"
        self._messages[sid] = SimMessage(
            sid=sid,
            from_=handset,
            to=number.phone_number,
            body=body,
            direction="inbound",
            status="received",
            date_created=moment,
            date_updated=moment,
            date_sent=moment,
            num_media=len(media_types),
            num_segments=count_segments(body),
        )
        self._handsets[handset].append(
            HandsetText(
                sid, moment, "sent", handset, number.phone_number, body, "sent", media_types
            )
        )
        self._apply_keyword_locked(handset, number.phone_number, body)
        webhook = InboundWebhook(
            url=number.sms_url or base + DEFAULT_SMS_PATH,
            params=params,
            idempotency_token=str(uuid.uuid4()),
            handset=handset,
            twilio_number=number.phone_number,
        )
        self._inbound[sid] = webhook
        return webhook

    def _apply_keyword_locked(self, handset: str, twilio_number: str, body: str) -> None:
        word = body.strip().rstrip(".!").upper()
        if word in OPT_OUT_WORDS:
            self._opted_out.add((handset, twilio_number))
        elif word in OPT_IN_WORDS:
            self._opted_out.discard((handset, twilio_number))

    def _post_inbound(self, webhook: InboundWebhook, signature: str) -> InboundResult:
        response = signed_post(
            webhook.url,
            webhook.params,
            auth_token=self._auth_token(),
            timeout=INBOUND_TIMEOUT,
            signature=signature,
            idempotency_token=webhook.idempotency_token,
        )
        text = response.text
        if 200 <= response.status_code < 300:
            for reply in twiml_messages(text):
                self._deliver_reply(webhook, reply)
        return InboundResult(webhook.params["MessageSid"], response.status_code, text)

    def _deliver_reply(self, webhook: InboundWebhook, reply: TwimlMessage) -> None:
        """A TwiML ``<Message>`` goes out at once, by default to the sender from the number."""
        to = reply.to or webhook.handset
        from_ = reply.from_ or webhook.twilio_number
        moment = now()
        message = SimMessage(
            sid=new_sid("SM"),
            from_=from_,
            to=to,
            body=reply.body,
            direction="outbound-reply",
            status="delivered",
            date_created=moment,
            date_updated=moment,
            date_sent=moment,
            num_segments=count_segments(reply.body),
        )
        with self._lock:
            if (to, from_) in self._opted_out:
                message.status, message.error_code = "failed", 21610
            else:
                self._deliver_locked(message)
            self._messages[message.sid] = message
            webhook.replies.append(message.sid)

    # --- Questions tests ask ---------------------------------------------------------------

    def message(self, sid: str) -> SimMessage | None:
        """A copy of the Message with that sid, or None."""
        with self._lock:
            message = self._messages.get(sid)
            return replace(message) if message else None

    def messages(self) -> list[SimMessage]:
        """Copies of every Message, oldest first."""
        with self._lock:
            return [replace(m) for m in self._messages.values()]

    def texts_for(self, number: str) -> list[HandsetText]:
        """What the handset ``number`` shows: texts it received and sent, oldest first."""
        with self._lock:
            return list(self._handsets.get(number, ()))

    def deliveries(self, sid: str) -> int:
        """How many times the message ``sid`` reached a handset (never more than 1)."""
        with self._lock:
            return self._deliveries_by_sid[sid]

    def deliveries_of(self, to: str, body: str) -> int:
        """How many texts with this body reached ``to``, whatever their sids."""
        with self._lock:
            return self._deliveries_by_content[(to, body)]

    def duplicate_deliveries(self) -> dict[tuple[str, str], int]:
        """(to, body) pairs that reached a handset more than once, with their counts."""
        with self._lock:
            return {key: n for key, n in self._deliveries_by_content.items() if n > 1}

    def callbacks(self) -> list[CallbackRecord]:
        """Every status callback that was delivered or dropped, in that order."""
        with self._lock:
            return list(self._callbacks)

    def create_calls(self) -> list[CreateCall]:
        """Every authenticated call to Messages create and its answer, in order."""
        with self._lock:
            return list(self._create_calls)

    def report(self) -> dict[str, Any]:
        """Everything a long run needs to check afterwards, in one consistent snapshot.

        ``creates``: calls to Messages create by HTTP status; ``outbound``: every Message
        created through the API, with when its call arrived (Unix time) and its deliveries;
        ``duplicates``:
        (to, body) pairs that reached a handset more than once; ``callbacks``: status
        callbacks delivered, dropped and retried, and every attempt by the HTTP status it got;
        ``busy``: deliveries, callbacks and API calls still pending.
        """
        with self._lock:
            creates = Counter(str(call.http_status) for call in self._create_calls)
            outbound = [
                {
                    "sid": m.sid,
                    "to": m.to,
                    "from": m.from_,
                    "body": m.body,
                    "status": m.status,
                    "requested": (m.requested_at or m.date_created).timestamp(),
                    "deliveries": self._deliveries_by_sid[m.sid],
                }
                for m in self._messages.values()
                if m.direction == "outbound-api"
            ]
            duplicates = [
                {"to": to, "body": body, "count": n}
                for (to, body), n in self._deliveries_by_content.items()
                if n > 1
            ]
            callbacks = {
                "delivered": sum(1 for c in self._callbacks if c.delivered),
                "dropped": sum(1 for c in self._callbacks if not c.delivered),
                "retried": sum(1 for c in self._callbacks if c.attempts > 1),
                "attempts": dict(self._callback_attempts),
            }
            inbound = sum(1 for m in self._messages.values() if m.direction == "inbound")
            return {
                "creates": dict(creates),
                "outbound": outbound,
                "duplicates": duplicates,
                "callbacks": callbacks,
                "inbound": inbound,
                "busy": self._busy_locked(),
            }

    def is_opted_out(self, handset: str, twilio_number: str) -> bool:
        with self._lock:
            return (handset, twilio_number) in self._opted_out

    @property
    def media_fetches(self) -> int:
        with self._lock:
            return self._media_fetches

    # --- Lifecycle --------------------------------------------------------------------------

    def _busy_locked(self) -> int:
        return self._dispatcher.pending_locked() + self._in_flight

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no delivery, callback or API call is pending.

        Raises TimeoutError when work is still pending after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while busy := self._busy_locked():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"the simulator still has {busy} jobs after {timeout} s")
                self._changed.wait(remaining)

    def close(self) -> None:
        """Stop: drop pending deliveries and callbacks, cut short any sleeping API call, and
        wait for the worker threads and API calls to end. Calling it again does nothing."""
        self._closing.set()
        self._dispatcher.close(timeout=self.callback_timeout + 1)
        deadline = time.monotonic() + 5
        with self._changed:
            while self._in_flight and time.monotonic() < deadline:
                self._changed.wait(deadline - time.monotonic())

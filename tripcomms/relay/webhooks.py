"""Twilio's webhooks: ``POST /twilio/sms`` (a text arrived) and ``POST /twilio/status``.

Both are signed by Twilio with the auth token over the URL it called; we check the signature
against PUBLIC_BASE_URL plus the path, so they work behind a reverse proxy. A bad signature gets
403 and an audit entry. Both are idempotent: Twilio may post the same thing again.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, abort, current_app, request
from limits import parse
from sqlalchemy.exc import IntegrityError
from twilio.request_validator import RequestValidator, compare

from tripcomms.audit.operations import TWILIO, record
from tripcomms.extensions import csrf, db, limiter, unlimited
from tripcomms.relay import operations as ops
from tripcomms.relay.outbox import wake

log = logging.getLogger(__name__)

bp = Blueprint("twilio", __name__, url_prefix="/twilio")
csrf.exempt(bp)
unlimited(bp)

EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
MAX_MEDIA = 20
# The longest Body kept whole, in characters. Twilio sends at most 1,600; this is far beyond
# that, and the most any body this long can give PostgreSQL's full-text index (about 600 kB of
# tsvector, from 50,000 one-letter words all different) is well inside its 1 MB limit.
MAX_INBOUND_BODY = 100_000
# The largest error code kept: the columns are 32-bit integers (Twilio's codes have 5 digits).
MAX_ERROR_CODE = 2**31 - 1


def _signed_url() -> str:
    query = request.query_string.decode("latin-1")
    return current_app.config["PUBLIC_BASE_URL"] + request.path + (f"?{query}" if query else "")


def _check_signature() -> None:
    """403, with an audit entry, unless Twilio signed this request."""
    signature = request.headers.get("X-Twilio-Signature", "")
    validator = RequestValidator(current_app.config["TWILIO_AUTH_TOKEN"] or "")
    url = _signed_url()
    # The URL exactly as configured first (one HMAC); then the library's full check, which
    # also accepts the URL with its default port added or removed (two more).
    if signature and (
        compare(validator.compute_signature(url, request.form), signature)
        or validator.validate(url, request.form, signature)
    ):
        return
    db.session.rollback()
    if _audit_another_refusal():
        record(
            TWILIO,
            "webhook.bad_signature",
            path=request.path,
            signed=bool(signature),
            address=request.remote_addr,
        )
        db.session.commit()
        log.warning("refused a webhook to %s with a bad or missing signature", request.path)
    else:
        log.warning(
            "refused a webhook to %s with a bad or missing signature (not audited: more than "
            "%s from this address)",
            request.path,
            current_app.config["BAD_SIGNATURE_AUDITS_PER_ADDRESS"],
        )
    abort(403)


def _audit_another_refusal() -> bool:
    """Whether this address is still under its allowance of audited refusals. The count lives
    in the rate limiter's storage (Redis when configured, so it is shared by every worker);
    if that storage fails, the refusal is audited."""
    if not limiter.enabled:
        return True
    allowance = parse(current_app.config["BAD_SIGNATURE_AUDITS_PER_ADDRESS"])
    try:
        return limiter.limiter.hit(allowance, "webhook-bad-signature", request.remote_addr or "-")
    except Exception:  # a storage outage must not stop the refusal being recorded
        log.exception("could not count refused webhooks; auditing this one")
        return True


def _clean(value: str | None, limit: int) -> str:
    """Text as Twilio sent it, less NUL characters (no database stores them)."""
    return (value or "").replace("\x00", "\ufffd")[:limit]


def _error_code(value: str | None) -> int | None:
    """A status callback's ErrorCode, or None when it is absent, zero, or not a code that
    fits the database's integer columns (written in ASCII digits, at most 2**31 - 1)."""
    text = (value or "").strip()
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    code = int(text)
    return code if 0 < code <= MAX_ERROR_CODE else None


def twiml() -> Response:
    return Response(EMPTY_TWIML, mimetype="text/xml")


@bp.route("/sms", methods=["POST"])
def sms():
    _check_signature()
    sid = _clean(request.form.get("MessageSid"), 100)
    if not sid or len(sid) > 64:
        abort(400)
    try:
        count = min(int(request.form.get("NumMedia", "0") or 0), MAX_MEDIA)
    except ValueError:
        count = 0
    media = tuple(
        _clean(request.form.get(f"MediaContentType{i}"), 100) or "unknown" for i in range(count)
    )
    body = request.form.get("Body") or ""
    inbound = ops.Inbound(
        sid=sid,
        from_number=_clean(request.form.get("From"), 40),
        to_number=_clean(request.form.get("To"), 40),
        body=_clean(body, MAX_INBOUND_BODY),
        media_types=media,
        sent_length=len(body),
    )
    try:
        ops.handle_inbound(inbound)
        db.session.commit()
    except IntegrityError:
        # The same MessageSid stored before (Twilio retrying) or committed by a concurrent
        # request: the unique sid refuses this copy, so the text is relayed once, by the first.
        # There is no separate look-up first: a repeat is rare, and the index decides anyway.
        db.session.rollback()
        if not ops.already_stored(sid):
            raise
        return twiml()
    wake(current_app._get_current_object())
    return twiml()


@bp.route("/status", methods=["POST"])
def status():
    _check_signature()
    sid = _clean(request.form.get("MessageSid"), 100)
    state = _clean(request.form.get("MessageStatus"), 16).lower()
    if not sid or len(sid) > 64 or not state:
        abort(400)
    ops.record_status(sid, state, _error_code(request.form.get("ErrorCode")))
    db.session.commit()
    return Response(status=204)

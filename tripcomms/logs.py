"""Logs: a request id on every line, JSON lines when asked, and never a full phone number.

``create_app`` only adds the request id to requests; configuring handlers is the entry point's
job (``tripcomms.wsgi``, the demo, the worker), so building an app never touches global logging.
"""

from __future__ import annotations

import json
import logging
import re
import uuid

from flask import Flask, g, has_request_context, request

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Anything that looks like a phone number keeps only its last three digits.
_NUMBER = re.compile(r"\+?\d(?:[ \-.]?\d){8,}")


def mask_numbers(text: str) -> str:
    return _NUMBER.sub(lambda m: "•••" + re.sub(r"\D", "", m.group())[-3:], text)


class RequestContextFilter(logging.Filter):
    """Adds ``request_id`` to each record and masks phone numbers in its message."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = g.get("request_id", "-") if has_request_context() else "-"
        message = record.getMessage()
        masked = mask_numbers(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z"),
            "level": record.levelname,
            "logger": record.name,
            "request_id": getattr(record, "request_id", "-"),
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = mask_numbers(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def register_request_id(app: Flask) -> None:
    """Every request gets an id (the proxy's X-Request-ID if it is sane), echoed back."""

    @app.before_request
    def _request_id():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex

    @app.after_request
    def _echo(response):
        if "request_id" in g:
            response.headers["X-Request-ID"] = g.request_id
        return response


def configure_logging(app: Flask) -> None:
    """Send logs to stderr as text or, with LOG_FORMAT = "json", as JSON lines."""
    handler = logging.StreamHandler()
    handler.addFilter(RequestContextFilter())
    if app.config["LOG_FORMAT"] == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")
        )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(app.config["LOG_LEVEL"])

"""``GET /healthz`` for monitoring: the database answers, the sender runs, nothing waits long.

It needs no login and says nothing about trips, people or messages beyond counts and ages.
"""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError

from tripcomms.extensions import db, unlimited
from tripcomms.relay.models import Direction, Message, Status
from tripcomms.relay.outbox import in_process_sender_alive
from tripcomms.types import utcnow

bp = Blueprint("health", __name__)
unlimited(bp)

# Past this, a text waiting to be sent means the sender is stuck or Twilio unreachable.
PENDING_ALARM_SECONDS = 300


@bp.route("/healthz")
def healthz():
    report: dict[str, object] = {}
    healthy = True
    try:
        db.session.execute(text("SELECT 1"))
        report["database"] = "ok"
        oldest = db.session.scalar(
            select(func.min(Message.created_at)).where(
                Message.direction == Direction.OUT,
                Message.status.in_([Status.PENDING, Status.SENDING]),
            )
        )
        age = (utcnow() - oldest).total_seconds() if oldest else 0
        report["oldest_pending_seconds"] = round(age)
        if age > PENDING_ALARM_SECONDS:
            healthy = False
    except SQLAlchemyError:
        db.session.rollback()
        report["database"] = "unreachable"
        healthy = False
    if current_app.config["SEND_IN_PROCESS"]:
        alive = in_process_sender_alive(current_app._get_current_object())
        # The sender starts with the first request; this one may be it.
        report["sender"] = "running" if alive else "not started"
    else:
        report["sender"] = "separate worker processes"
    report["status"] = "ok" if healthy else "failing"
    return jsonify(report), 200 if healthy else 503

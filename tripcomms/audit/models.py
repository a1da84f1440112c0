"""AuditEvent: one row per state change, each carrying the hash of the one before."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from json.encoder import c_make_encoder, encode_basestring
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tripcomms.extensions import db
from tripcomms.types import UTCDateTime, utcnow

GENESIS_HASH = "0" * 64

# One row (id 1) holding the chain's newest sequence number and hash. Writers update it first,
# which takes a row lock on PostgreSQL and the write lock on SQLite, so two transactions can
# never both extend the chain from the same event.
audit_head = Table(
    "audit_head",
    db.metadata,
    Column("id", Integer, primary_key=True),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)


class AuditEvent(db.Model):
    __tablename__ = "audit_events"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    actor: Mapped[str] = mapped_column(String(40))  # "user", or a system actor's name
    action: Mapped[str] = mapped_column(String(64), index=True)
    subject_type: Mapped[str | None] = mapped_column(String(40))
    subject_id: Mapped[str | None] = mapped_column(String(64))
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))

    actor_user = relationship("User", lazy="joined")

    def __repr__(self) -> str:
        return f"<AuditEvent {self.seq} {self.action}>"

    @property
    def actor_display(self) -> str:
        if self.actor_user is not None:
            return self.actor_user.name
        return self.actor


# One encoder, made once: json.dumps with these options builds a new one on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
# The C encoder behind it, made once too (JSONEncoder.encode makes one per call). The data it
# is given came out of JSON, so it needs no check for cycles (markers None).
try:
    _C_CANONICAL = c_make_encoder(
        None, _CANONICAL.default, encode_basestring, None, ":", ",", True, False, True
    )
except TypeError:  # pragma: no cover - a Python whose C encoder takes other arguments
    _C_CANONICAL = None


def canonical_json(value: Any) -> str:
    """JSON with sorted keys, no spaces, and text as itself: one spelling for one value."""
    if _C_CANONICAL is not None and isinstance(value, dict):
        return "".join(_C_CANONICAL(value, 0))
    return _CANONICAL.encode(value)


def _json_text(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def chain_hash(
    prev_hash: str,
    seq: int,
    created_at: datetime,
    actor_id: int | None,
    actor: str,
    action: str,
    subject_type: str | None,
    subject_id: str | None,
    data: dict[str, Any],
) -> str:
    """SHA-256 over the previous hash and the event's canonical JSON."""
    return chain_hash_of_text(
        prev_hash,
        seq,
        created_at.astimezone(UTC).isoformat(timespec="microseconds"),
        actor_id,
        actor,
        action,
        subject_type,
        subject_id,
        canonical_json(data),
    )


def chain_hash_of_text(
    prev_hash: str,
    seq: int,
    at: str,
    actor_id: int | None,
    actor: str,
    action: str,
    subject_type: str | None,
    subject_id: str | None,
    data_json: str,
) -> str:
    """``chain_hash`` from the time already in ISO 8601 (UTC, microseconds) and the data
    already as canonical JSON.

    The event's canonical JSON is written out key by key, in sorted order, exactly as
    ``canonical_json`` would write the whole dict: ``audit verify`` runs this a million
    times, and building and encoding a dict for each would double its time.
    """
    payload = "".join(
        (
            '{"action":',
            _json_text(action),
            ',"actor":',
            _json_text(actor),
            ',"actor_id":',
            "null" if actor_id is None else str(int(actor_id)),
            ',"at":',
            _json_text(at),
            ',"data":',
            data_json,
            ',"seq":',
            str(int(seq)),
            ',"subject_id":',
            _json_text(subject_id),
            ',"subject_type":',
            _json_text(subject_type),
            "}",
        )
    )
    return hashlib.sha256((prev_hash + payload).encode()).hexdigest()

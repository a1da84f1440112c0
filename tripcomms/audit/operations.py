"""Writing and checking the audit chain."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import Text, bindparam, select, type_coerce

from tripcomms.audit.models import (
    GENESIS_HASH,
    AuditEvent,
    audit_head,
    canonical_json,
    chain_hash,
    chain_hash_of_text,
)
from tripcomms.extensions import db
from tripcomms.types import utcnow

if TYPE_CHECKING:
    from tripcomms.auth.models import User


@dataclass(frozen=True)
class SystemActor:
    """Something other than a signed-in person that changes state: the clock, Twilio, the CLI."""

    name: str

    def __str__(self) -> str:
        return self.name


SYSTEM = SystemActor("system")
CLI = SystemActor("cli")
TWILIO = SystemActor("twilio")
ANONYMOUS = SystemActor("anonymous")


# The two statements on the head row, built once: every audited change runs both.
_CLAIM_NEXT = (
    audit_head.update()
    .where(audit_head.c.id == 1)
    .values(seq=audit_head.c.seq + 1)
    .returning(audit_head.c.seq, audit_head.c.hash)
)
_SET_HEAD_HASH = audit_head.update().where(audit_head.c.id == 1).values(hash=bindparam("new_hash"))
_INSERT_EVENT = AuditEvent.__table__.insert()


class _HasId(Protocol):
    id: Any


def _actor_fields(actor: User | SystemActor | None) -> tuple[int | None, str]:
    if actor is None:
        return None, ANONYMOUS.name
    if isinstance(actor, SystemActor):
        return None, actor.name
    return actor.id, "user"


def record(
    actor: User | SystemActor | None,
    action: str,
    subject: _HasId | None = None,
    **data: Any,
) -> int:
    """Append an event to the chain inside the current transaction; return its sequence number.

    ``data`` must be JSON-serialisable and should hold ids and digests, not message bodies or
    phone numbers, so that retention can redact those without breaking the chain.

    The three statements (claim the next number, insert the event, move the head) run on the
    session's connection as plain statements: every webhook writes an event, and the ORM's
    unit of work cost more than the statements themselves.
    """
    session = db.session
    if subject is not None and getattr(subject, "id", None) is None:
        session.flush()
    actor_id, actor_name = _actor_fields(actor)
    # Round-trip through JSON so that what we hash is exactly what the database hands back.
    clean = json.loads(json.dumps(data, default=str))
    connection = session.connection()
    seq, prev_hash = connection.execute(_CLAIM_NEXT).one()
    created_at = utcnow()
    subject_type = subject.__tablename__ if subject is not None else None
    subject_id = str(subject.id) if subject is not None else None
    digest = chain_hash(
        prev_hash, seq, created_at, actor_id, actor_name, action, subject_type, subject_id, clean
    )
    connection.execute(
        _INSERT_EVENT,
        {
            "seq": seq,
            "created_at": created_at,
            "actor_id": actor_id,
            "actor": actor_name,
            "action": action,
            "subject_type": subject_type,
            "subject_id": subject_id,
            "data": clean,
            "prev_hash": prev_hash,
            "hash": digest,
        },
    )
    connection.execute(_SET_HEAD_HASH, {"new_hash": digest})
    return seq


@dataclass
class VerifyResult:
    checked: int
    bad_seq: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.bad_seq is None


def verify_chain(batch_size: int = 10_000) -> VerifyResult:
    """Recompute every hash in sequence order and compare it with the head row.

    Returns the number checked and, on failure, the first bad sequence number and why.
    """
    expected_seq, last_hash, checked = 1, GENESIS_HASH, 0
    rows, close = _chain_rows(batch_size)
    try:
        for seq, created_at, actor_id, actor, action, stype, sid, data, prev_hash, digest in rows:
            if seq != expected_seq:
                return VerifyResult(checked, expected_seq, f"event {expected_seq} is missing")
            if prev_hash != last_hash:
                return VerifyResult(checked, seq, "it does not follow the event before it")
            recomputed = chain_hash_of_text(
                prev_hash,
                seq,
                _iso_utc(created_at),
                actor_id,
                actor,
                action,
                stype,
                sid,
                canonical_json(_loaded(data)),
            )
            if recomputed != digest:
                return VerifyResult(checked, seq, "its contents do not match its hash")
            last_hash, expected_seq, checked = digest, seq + 1, checked + 1
    finally:
        close()
    head_seq, head_hash = db.session.execute(
        select(audit_head.c.seq, audit_head.c.hash).where(audit_head.c.id == 1)
    ).one()
    if head_seq != checked or head_hash != last_hash:
        return VerifyResult(checked, checked + 1, f"the chain ends early: {head_seq} were written")
    return VerifyResult(checked)


def _chain_rows(batch_size: int):
    """Every event's fields in sequence order, read as they go, and how to stop reading.

    On SQLite the rows come straight from the driver's cursor, times as the text they are
    stored as and data as JSON text: at a million events, SQLAlchemy's per-row work and
    parsing datetimes only to print them again would be most of the time. Elsewhere they come
    through SQLAlchemy in batches (a server-side cursor on PostgreSQL).
    """
    cols = AuditEvent.__table__.c
    columns = (
        cols.seq,
        cols.created_at,
        cols.actor_id,
        cols.actor,
        cols.action,
        cols.subject_type,
        cols.subject_id,
        cols.data,
        cols.prev_hash,
        cols.hash,
    )
    if db.engine.dialect.name == "sqlite":
        names = ", ".join(c.name for c in columns)
        cursor = db.session.connection().connection.dbapi_connection.cursor()
        cursor.arraysize = batch_size
        cursor.execute(f"SELECT {names} FROM audit_events ORDER BY seq")  # noqa: S608 (fixed names)
        return cursor, cursor.close
    stmt = (
        select(*columns[:7], type_coerce(cols.data, Text), *columns[8:])
        .order_by(cols.seq)
        .execution_options(yield_per=batch_size)
    )
    result = db.session.execute(stmt)
    return result, result.close


def _iso_utc(value: datetime | str) -> str:
    """A stored time as ``chain_hash`` writes it: ISO 8601, UTC, with microseconds."""
    if isinstance(value, str):
        if len(value) == 26 and value[10] == " " and value[19] == ".":
            return f"{value[:10]}T{value[11:]}+00:00"
        value = datetime.fromisoformat(value).replace(tzinfo=UTC)
    elif value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds")


_DECODER = json.JSONDecoder()


def _loaded(data: str | dict | None) -> Any:
    """The event's data as stored: JSON text on SQLite, already decoded by some drivers."""
    if data is None:
        return {}
    if not isinstance(data, str):
        return data
    try:
        # json.dumps wrote it, so it starts at its first character: skip json.loads's
        # search for leading white space.
        value, end = _DECODER.raw_decode(data)
    except ValueError:
        return json.loads(data)
    return value if end == len(data) else json.loads(data)

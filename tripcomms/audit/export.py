"""CSV exports of the communication log, streamed in constant memory.

Rows come from one query read in batches (``yield_per``: a server-side cursor on PostgreSQL,
the SQLite cursor stepped as it goes), each batch written out as CSV text before the next is
read, so an export of a million messages needs no more memory than one of a hundred.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from datetime import datetime

from sqlalchemy import Select, select
from sqlalchemy.orm import aliased

from tripcomms.audit.parties import parties
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.localtime import LONDON
from tripcomms.mobile import mask_number
from tripcomms.relay.models import Message
from tripcomms.trips.models import Contact, Trip

BATCH = 2000

COLUMNS = [
    "message_id",
    "time_utc",
    "time_local",
    "trip_id",
    "trip",
    "direction",
    "kind",
    "from_role",
    "from_name",
    "from_number",
    "to_role",
    "to_name",
    "to_number",
    "body",
    "status",
    "error_code",
    "twilio_sid",
]

# A spreadsheet runs a cell that starts with one of these as a formula; text people wrote
# (bodies, names) is prefixed with an apostrophe so that opening the export runs nothing.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _safe_text(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def export_query(conditions: Iterable) -> Select:
    """The columns of the export for messages meeting ``conditions``, oldest first."""
    staff = aliased(User)
    return (
        select(
            Message.id,
            Message.created_at,
            Message.trip_id,
            Trip.title,
            Message.direction,
            Message.kind,
            Message.from_number,
            Message.to_number,
            Message.body,
            Message.status,
            Message.error_code,
            Message.twilio_sid,
            Contact.name,
            staff.name,
        )
        .outerjoin(Trip, Trip.id == Message.trip_id)
        .outerjoin(Contact, Contact.id == Message.contact_id)
        .outerjoin(staff, staff.id == Message.staff_id)
        .where(*conditions)
        .order_by(Message.created_at, Message.id)
    )


def _utc_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def export_rows(query: Select, *, full_numbers: bool, batch: int = BATCH) -> Iterator[list]:
    """Each row of ``query`` (from ``export_query``) as the export's columns."""
    mask = (lambda n: n) if full_numbers else mask_number
    result = db.session.execute(query.execution_options(yield_per=batch))
    try:
        for row in result:
            mid, at, trip_id, title, direction, kind, from_n, to_n = row[:8]
            body, status, error, sid, contact_name, staff_name = row[8:]
            sender, recipient = parties(
                direction=direction,
                kind=kind,
                from_number=from_n,
                to_number=to_n,
                contact_name=contact_name,
                staff_name=staff_name,
                trip_title=title,
            )
            yield [
                mid,
                _utc_text(at),
                _utc_text(at.astimezone(LONDON)),
                trip_id or "",
                _safe_text(title or ""),
                direction,
                kind,
                sender.role,
                _safe_text(sender.name),
                mask(sender.number),
                recipient.role,
                _safe_text(recipient.name),
                mask(recipient.number),
                _safe_text(body),
                status,
                error if error is not None else "",
                sid or "",
            ]
    finally:
        result.close()


def csv_chunks(rows: Iterable[list], *, rows_per_chunk: int = 500) -> Iterator[str]:
    """The header and ``rows`` as CSV text, a few hundred rows to a chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    pending = 0
    for row in rows:
        writer.writerow(row)
        pending += 1
        if pending >= rows_per_chunk:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
            pending = 0
    yield buffer.getvalue()

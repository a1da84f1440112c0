"""Searching the communication log: filters, full-text search, and one page of results.

Text search uses the database's full-text index (migration 0007): FTS5 on SQLite, a GIN index
over ``to_tsvector('simple', body)`` on PostgreSQL. What a person types is never handed to
either as query syntax: it is cut into words, and each word becomes a quoted term (FTS5) or
goes through ``plainto_tsquery`` (PostgreSQL), so quotes, ``*``, ``OR``, ``NEAR``, ``%`` and
brackets are only ever text and a message must hold every word.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    Select,
    String,
    and_,
    column,
    exists,
    false,
    func,
    literal_column,
    select,
    table,
    type_coerce,
    union_all,
)

from tripcomms.audit.access import FULL_ACCESS, message_conditions, own_trip_ids
from tripcomms.auth.models import Role, User
from tripcomms.extensions import db
from tripcomms.localtime import LONDON
from tripcomms.relay.models import Message
from tripcomms.trips.models import Contact, ContactLink, Pupil

MAX_TERMS = 20
MAX_TERM_LENGTH = 64
PER_PAGE = 25
# Counting every match of a common word would read most of the table; past this many the
# page says "more than 1,000".
COUNT_CAP = 1000
# On SQLite, a page is first looked for among this many of the newest matches by id.
WINDOW = 1000

_WORD = re.compile(r"\w+", re.UNICODE)
# The FTS5 table: "rowid" is the message's id; the column named after the table is what MATCH
# is asked of.
_fts = table("messages_fts", column("rowid"), column("messages_fts"))


# --- What the person asked for ---------------------------------------------------------------


@dataclass
class LogFilter:
    """A search of the log. Dates are London calendar days, both ends included."""

    trip_id: int | None = None
    date_from: date | None = None
    date_to: date | None = None
    contact_id: int | None = None
    pupil_id: int | None = None
    person: str = ""  # a parent's, carer's or pupil's name, or part of it
    staff_id: int | None = None
    direction: str | None = None
    status: str | None = None
    text: str = ""
    newest_first: bool = True

    @property
    def terms(self) -> list[str]:
        return search_terms(self.text)

    def as_audit_data(self) -> dict[str, Any]:
        """The filter as the audit trail keeps it: ids and dates; words only as a count."""
        return {
            "trip_id": self.trip_id,
            "from": self.date_from.isoformat() if self.date_from else None,
            "to": self.date_to.isoformat() if self.date_to else None,
            "contact_id": self.contact_id,
            "pupil_id": self.pupil_id,
            "person": bool(self.person),
            "staff_id": self.staff_id,
            "direction": self.direction,
            "status": self.status,
            "words": len(self.terms),
        }


def search_terms(text_: str) -> list[str]:
    """The words of a search, at most MAX_TERMS, each cut to MAX_TERM_LENGTH characters.

    Everything that is not a letter or digit separates words, as the full-text indexes'
    own tokenizers do, so no character can reach them as syntax.
    """
    words = [w[:MAX_TERM_LENGTH] for w in _WORD.findall(text_ or "")]
    return list(dict.fromkeys(words))[:MAX_TERMS]


def fts5_query(terms: list[str]) -> str:
    """An FTS5 MATCH expression that requires every term, each as a quoted string."""
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


def local_day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, LONDON)


# --- Building the query ----------------------------------------------------------------------


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _person_condition(name: str):
    pattern = f"%{_escape_like(name.strip().lower())}%"
    contacts = select(Contact.id).where(func.lower(Contact.name).like(pattern, escape="\\"))
    pupil_name = func.lower(Pupil.first_name + " " + Pupil.last_name)
    parents = (
        select(ContactLink.contact_id)
        .join(Pupil, Pupil.id == ContactLink.pupil_id)
        .where(pupil_name.like(pattern, escape="\\"))
    )
    return Message.contact_id.in_(contacts.union(parents).scalar_subquery())


def _text_condition(terms: list[str]):
    """Messages holding every term, through the full-text index (an IN over its matches)."""
    if db.engine.dialect.name == "sqlite":
        return Message.id.in_(select(_fts.c.rowid).where(_fts_match(terms)))
    return _pg_match(terms)


def _pg_match(terms: list[str]):
    # The same expression as the index (to_tsvector('simple', body)), so the planner uses it.
    vector = func.to_tsvector(literal_column("'simple'::regconfig"), Message.body)
    query = func.plainto_tsquery(literal_column("'simple'::regconfig"), " ".join(terms))
    return vector.op("@@")(query)


def filter_conditions(flt: LogFilter) -> list:
    """WHERE clauses for everything but the text."""
    conditions: list = []
    if flt.trip_id is not None:
        conditions.append(Message.trip_id == flt.trip_id)
    if flt.date_from is not None:
        conditions.append(Message.created_at >= local_day_start(flt.date_from))
    if flt.date_to is not None:
        conditions.append(Message.created_at < local_day_start(flt.date_to + timedelta(days=1)))
    if flt.contact_id is not None:
        conditions.append(Message.contact_id == flt.contact_id)
    if flt.pupil_id is not None:
        parents = select(ContactLink.contact_id).where(ContactLink.pupil_id == flt.pupil_id)
        conditions.append(Message.contact_id.in_(parents))
    if flt.person.strip():
        conditions.append(_person_condition(flt.person))
    if flt.staff_id is not None:
        conditions.append(Message.staff_id == flt.staff_id)
    if flt.direction:
        conditions.append(Message.direction == flt.direction)
    if flt.status:
        conditions.append(Message.status == flt.status)
    return conditions


def search_conditions(user: User | None, flt: LogFilter) -> list:
    """WHERE clauses for every message ``user`` may read that matches ``flt`` (``user``
    None: the command line, which reads everything)."""
    conditions = [*(message_conditions(user) if user else []), *filter_conditions(flt)]
    if flt.terms:
        conditions.append(_text_condition(flt.terms))
    elif flt.text.strip():
        # Only punctuation: nothing can hold "no words", so nothing matches.
        conditions.append(false())
    return conditions


def search_query(user: User | None, flt: LogFilter) -> Select[tuple[Message]]:
    """Every message ``user`` may read that matches ``flt``, in time order."""
    query = select(Message).where(*search_conditions(user, flt))
    return query.order_by(*_time_order(flt.newest_first))


def _time_order(newest_first: bool) -> list:
    if newest_first:
        return [Message.created_at.desc(), Message.id.desc()]
    return [Message.created_at.asc(), Message.id.asc()]


# --- One page --------------------------------------------------------------------------------


@dataclass
class LogPage:
    """A page of results with the attributes the pager needs; ``total`` stops at COUNT_CAP."""

    items: list[Message]
    page: int
    per_page: int
    total: int
    more_than_total: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page * self.per_page < self.total or (
            self.more_than_total and len(self.items) == self.per_page
        )

    @property
    def prev_num(self) -> int:
        return self.page - 1

    @property
    def next_num(self) -> int:
        return self.page + 1

    @property
    def total_text(self) -> str:
        if self.more_than_total:
            return f"more than {self.total:,}"
        return f"{self.total:,}"


def search_page(user: User, flt: LogFilter, page: int = 1, per_page: int = PER_PAGE) -> LogPage:
    """One page of ``search_query`` and how many there are (up to COUNT_CAP)."""
    page = max(page, 1)
    offset = (page - 1) * per_page
    if not (flt.terms and db.engine.dialect.name == "sqlite"):
        query = search_query(user, flt)
        items = list(db.session.scalars(query.offset(offset).limit(per_page)))
        return _page(
            items, query.with_only_columns(literal_column("1")).order_by(None), page, per_page
        )
    conditions = [*message_conditions(user), *filter_conditions(flt)]
    ranges = _id_ranges(user, flt)
    if ranges is None:
        items = _fts_window_page(conditions, flt, offset, per_page)
        matches = _fts.join(Message.__table__, Message.id == _fts.c.rowid)
        found = select(literal_column("1")).select_from(matches).where(_fts_match(flt.terms))
    elif not ranges:
        return LogPage(items=[], page=page, per_page=per_page, total=0)
    else:
        candidates = _fts_in_ranges(flt.terms, ranges)
        matches = candidates.join(Message.__table__, Message.id == candidates.c.rowid)
        query = select(Message.id).select_from(matches).where(*conditions)
        ordered = query.order_by(*_time_order(flt.newest_first)).offset(offset).limit(per_page)
        items = _messages_in_order(list(db.session.scalars(ordered)))
        found = select(literal_column("1")).select_from(matches)
    return _page(items, found.where(*conditions), page, per_page)


def _page(items: list[Message], found: Select, page: int, per_page: int) -> LogPage:
    """The page, with ``found`` (one row per match) counted up to COUNT_CAP + 1."""
    total = db.session.scalar(
        select(func.count()).select_from(found.limit(COUNT_CAP + 1).subquery())
    )
    return LogPage(
        items=items,
        page=page,
        per_page=per_page,
        total=min(total, COUNT_CAP),
        more_than_total=total > COUNT_CAP,
    )


def _fts_match(terms: list[str]):
    return _fts.c.messages_fts.op("MATCH")(fts5_query(terms))


# Past this many stretches of ids, one stretch from the first to the last does as well.
MAX_RANGES = 200


def _id_ranges(user: User, flt: LogFilter) -> list[tuple[int, int]] | None:
    """Stretches of ids that an SQLite text search can match, when a filter with an index of
    its own (a trip, a parent, a leader's own trips) confines it: one stretch per trip, since
    a trip's messages have ids close together. None when nothing confines the search (the
    whole log); [] when the filter matches nothing at all."""
    narrowing = []
    if flt.trip_id is not None:
        narrowing.append(Message.trip_id == flt.trip_id)
    if flt.contact_id is not None:
        narrowing.append(Message.contact_id == flt.contact_id)
    if user.effective_roles.isdisjoint({*FULL_ACCESS, Role.OFFICE}):
        narrowing.append(Message.trip_id.in_(own_trip_ids(user)))
    if not narrowing:
        return None
    stretches = sorted(
        (low, high)
        for low, high in db.session.execute(
            select(func.min(Message.id), func.max(Message.id))
            .where(*narrowing)
            .group_by(Message.trip_id)
        )
    )
    merged: list[tuple[int, int]] = []
    for low, high in stretches:
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(high, merged[-1][1]))
        else:
            merged.append((low, high))
    if len(merged) > MAX_RANGES:
        merged = [(merged[0][0], max(high for _, high in merged))]
    return merged


def _fts_in_ranges(terms: list[str], ranges: list[tuple[int, int]]):
    """The ids matching ``terms`` within ``ranges``: FTS5 reads only those stretches of each
    word's list, one query per stretch."""
    parts = [
        select(_fts.c.rowid.label("rowid")).where(
            _fts_match(terms), _fts.c.rowid.between(low, high)
        )
        for low, high in ranges
    ]
    return (union_all(*parts) if len(parts) > 1 else parts[0]).subquery("matches")


def _fts_window_page(conditions: list, flt: LogFilter, offset: int, limit: int) -> list[Message]:
    """A page of an SQLite text search of the whole log, found among the newest (or oldest)
    matches by id.

    Sorting every match of a common word by time would read most of the table. FTS5 hands
    matches over in id order without sorting, and ids follow time almost always, so the page
    is taken from the first WINDOW matches in id order, sorted by time. It is the true page
    unless some message outside that window is newer (older) than the page's last row, which
    one look along the time index rules out; only then is the slow exact query run.
    """
    newest = flt.newest_first
    need = offset + limit
    window = max(WINDOW, 2 * need)
    by_id = _fts.c.rowid.desc() if newest else _fts.c.rowid.asc()
    # Times as SQLite stores them (UTC text that sorts as time does), not parsed: this runs
    # over the whole window.
    stored_at = type_coerce(Message.created_at, String).label("created_at")
    rows = db.session.execute(
        select(Message.id, stored_at)
        .select_from(_fts.join(Message.__table__, Message.id == _fts.c.rowid))
        .where(_fts_match(flt.terms), *conditions)
        .order_by(by_id)
        .limit(window)
    ).all()
    rows.sort(key=lambda r: (r.created_at, r.id), reverse=newest)
    chosen = rows[offset:need]
    if len(rows) == window and chosen:
        edge = min(r.id for r in rows) if newest else max(r.id for r in rows)
        last = chosen[-1].created_at
        # "id + 0" keeps SQLite from walking the id index from one end; it walks the time
        # index from the page's last row instead, which reads only the few rows past it.
        outside = (
            and_(stored_at > last, Message.id + 0 < edge)
            if newest
            else and_(stored_at < last, Message.id + 0 > edge)
        )
        if db.session.scalar(select(exists().where(outside))):
            query = (
                select(Message.id)
                .where(Message.id.in_(select(_fts.c.rowid).where(_fts_match(flt.terms))))
                .where(*conditions)
                .order_by(*_time_order(newest))
                .offset(offset)
                .limit(limit)
            )
            return _messages_in_order(list(db.session.scalars(query)))
    return _messages_in_order([r.id for r in chosen])


def _messages_in_order(ids: list[int]) -> list[Message]:
    if not ids:
        return []
    found = {m.id: m for m in db.session.scalars(select(Message).where(Message.id.in_(ids)))}
    return [found[i] for i in ids if i in found]

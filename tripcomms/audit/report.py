"""A trip's report: its message timeline, counts, reply times, concerns, phones and a chart.

Other packages add sections with ``report_section`` (as they add panels to the trip page),
so this package does not import them. The slot named ``APPROVALS_SLOT`` is where the
personal-phone approvals in force during the trip belong; until a package fills it, the
report says that none are recorded here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from tripcomms.audit.access import message_conditions
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.localtime import LONDON
from tripcomms.relay.models import Direction, Message, Status
from tripcomms.trips.models import Trip

APPROVALS_SLOT = "approvals"
# A chart of more hours than this (a week's residential) is cut at its end.
MAX_CHART_HOURS = 24 * 8


@dataclass(frozen=True)
class ReportSection:
    slot: str
    template: str
    context: Callable[[Trip, User], dict[str, Any] | None]
    order: int


REPORT_SECTIONS: list[ReportSection] = []


def report_section(slot: str, template: str, order: int = 50):
    """Register a section of the trip report; its context function returns None to leave it
    out. ``slot`` names it (``APPROVALS_SLOT`` for personal-phone approvals)."""

    def decorator(fn: Callable[[Trip, User], dict[str, Any] | None]):
        REPORT_SECTIONS.append(ReportSection(slot, template, fn, order))
        return fn

    return decorator


def report_sections(trip: Trip, user: User) -> dict[str, list[dict[str, Any]]]:
    """The registered sections that have something to show, by slot."""
    shown: dict[str, list[dict[str, Any]]] = {}
    for section in sorted(REPORT_SECTIONS, key=lambda s: s.order):
        context = section.context(trip, user)
        if context is not None:
            shown.setdefault(section.slot, []).append({"template": section.template, **context})
    return shown


# --- Counting ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Counts:
    received: int
    sent: int  # outbound, not blocked
    delivered: int
    failed: int  # failed or undelivered
    blocked: int
    waiting: int  # pending or sending


def count_messages(messages: list[Message]) -> Counts:
    statuses = Counter(Status(m.status) for m in messages)
    inbound = sum(1 for m in messages if m.direction == Direction.IN)
    outbound = len(messages) - inbound
    return Counts(
        received=inbound,
        sent=outbound - statuses[Status.BLOCKED],
        delivered=statuses[Status.DELIVERED],
        failed=statuses[Status.FAILED] + statuses[Status.UNDELIVERED],
        blocked=statuses[Status.BLOCKED],
        waiting=statuses[Status.PENDING] + statuses[Status.SENDING],
    )


# --- The chart --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str  # "bar-in" or "bar-out"
    label: str


@dataclass
class HourChart:
    """Messages per hour (London time) as SVG geometry; the template only draws it."""

    hours: list[tuple[datetime, int, int]]  # (local hour, received, sent)
    width: int = 0
    height: int = 140
    plot_top: int = 10
    plot_bottom: int = 110
    bars: list[Bar] = field(default_factory=list)
    ticks: list[tuple[float, str]] = field(default_factory=list)
    peak: int = 0
    cut: bool = False

    @property
    def empty(self) -> bool:
        return self.peak == 0


def _hour(moment: datetime) -> datetime:
    # London's offset from UTC is whole hours, so a UTC hour is a London hour.
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def hour_chart(messages: list[Message], start: datetime, end: datetime) -> HourChart:
    """Received and sent messages per hour from ``start`` to ``end``, as bars labelled in
    London time. Hours are stepped in UTC, so the clocks changing neither repeats nor skips."""
    slots: list[datetime] = []
    moment = _hour(start)
    while moment <= end and len(slots) < MAX_CHART_HOURS:
        slots.append(moment)
        moment += timedelta(hours=1)
    cut = moment <= end
    index = {slot: i for i, slot in enumerate(slots)}
    received = [0] * len(slots)
    sent = [0] * len(slots)
    for message in messages:
        i = index.get(_hour(message.created_at))
        if i is None:
            continue
        if message.direction == Direction.IN:
            received[i] += 1
        elif message.status != Status.BLOCKED:
            sent[i] += 1
    local = [slot.astimezone(LONDON) for slot in slots]
    chart = HourChart(list(zip(local, received, sent, strict=True)), cut=cut)
    chart.peak = max([*received, *sent, 0])
    slot_width = 12
    chart.width = max(len(slots) * slot_width, slot_width)
    span = chart.plot_bottom - chart.plot_top
    for i, (slot, r, o) in enumerate(chart.hours):
        x = i * slot_width
        for offset, value, css, what in ((1, r, "bar-in", "received"), (6, o, "bar-out", "sent")):
            if value:
                height = span * value / chart.peak
                chart.bars.append(
                    Bar(
                        x + offset,
                        chart.plot_bottom - height,
                        5,
                        height,
                        css,
                        f"{slot:%a %H}:00 {value} {what}",
                    )
                )
        if slot.hour % 3 == 0:
            chart.ticks.append((x + slot_width / 2, f"{slot:%H}"))
    return chart


# --- The report -------------------------------------------------------------------------------


def trip_messages(trip: Trip, reader: User | None = None) -> list[Message]:
    """Every message of the trip that ``reader`` may read (None: all), oldest first, with who
    sent it."""
    conditions = message_conditions(reader) if reader is not None else []
    return list(
        db.session.scalars(
            select(Message)
            .where(Message.trip_id == trip.id, *conditions)
            .options(selectinload(Message.contact), selectinload(Message.staff))
            .order_by(Message.created_at, Message.id)
        )
    )


def report_period(trip: Trip) -> tuple[datetime, datetime]:
    """The trip's relay window: when its number took texts."""
    cfg = current_app.config
    return trip.starts_at - cfg["RELAY_OPEN_BEFORE"], trip.ends_at + cfg["RELAY_GRACE_AFTER"]

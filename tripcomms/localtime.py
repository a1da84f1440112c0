"""Time is UTC in the database and Europe/London on screen and in what people type."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from tripcomms.errors import InvalidInput

LONDON = ZoneInfo("Europe/London")
INPUT_FORMAT = "%Y-%m-%d %H:%M"


def to_local(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.astimezone(LONDON)


def parse_local(text: str, *, what: str = "time") -> datetime:
    """Parse "YYYY-MM-DD HH:MM" (or the HTML datetime-local form) as London time, return UTC."""
    cleaned = (text or "").strip().replace("T", " ")
    try:
        naive = datetime.strptime(cleaned, INPUT_FORMAT)
    except ValueError:
        raise InvalidInput(f"{what} must look like 2026-03-14 09:30, not {text!r}") from None
    return naive.replace(tzinfo=LONDON).astimezone(UTC)


def format_local(value: datetime | None, fmt: str = "%a %d %b %Y %H:%M") -> str:
    local = to_local(value)
    return local.strftime(fmt) if local else ""


def local_to_utc(naive: datetime) -> datetime:
    """A wall-clock time typed in the UK (as a form gives it) as an aware UTC datetime."""
    return naive.replace(tzinfo=LONDON).astimezone(UTC)


def utc_to_local_naive(value: datetime) -> datetime:
    """For filling a datetime-local input."""
    return value.astimezone(LONDON).replace(tzinfo=None)

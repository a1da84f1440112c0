"""The office's home-page section: overdue loans first, then the pool at a glance."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select

from tripcomms.auth.models import Role, User
from tripcomms.extensions import db
from tripcomms.main import home_section
from tripcomms.phones.models import Phone, PhoneStatus
from tripcomms.phones.queries import overdue_loans
from tripcomms.types import utcnow

HOME_OVERDUE_SHOWN = 10


@home_section(Role.OFFICE, template="phones/_home_section.html")
def phones_home_section(user: User) -> dict[str, Any]:
    now = utcnow()
    overdue = overdue_loans(now)
    counts = dict(
        db.session.execute(select(Phone.status, func.count()).group_by(Phone.status)).all()
    )
    return {
        "phones_now": now,
        "overdue": overdue[:HOME_OVERDUE_SHOWN],
        "overdue_total": len(overdue),
        "phone_counts": {status: counts.get(status, 0) for status in PhoneStatus},
    }

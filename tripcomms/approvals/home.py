"""Home-page sections: the Headteacher's waiting requests, and a leader's own requests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import or_

from tripcomms.approvals import queries
from tripcomms.approvals.models import ApprovalState, PersonalPhoneApproval
from tripcomms.auth.models import Role, User
from tripcomms.extensions import db
from tripcomms.main import home_section
from tripcomms.types import utcnow

HOME_SHOWN = 5


@home_section(Role.HEAD, template="approvals/_home_head.html")
def head_home_section(user: User) -> dict[str, Any]:
    now = utcnow()
    # Read as of now: one whose window ended since the last sweep is no longer waiting.
    waiting = [a for a in queries.pending() if a.state_at(now) == ApprovalState.PENDING]
    return {
        "pending": waiting[:HOME_SHOWN],
        "pending_total": len(waiting),
        "oldest_age": queries.age(waiting[0], now) if waiting else "",
        "in_force": len(queries.all_in_force(now)),
        "now": now,
    }


@home_section(Role.LEADER, template="approvals/_home_leader.html")
def leader_home_section(user: User) -> dict[str, Any]:
    """The user's requests that are open, or that ended in the last week."""
    now = utcnow()
    recent = now - timedelta(days=7)
    query = queries.mine(user).where(
        or_(PersonalPhoneApproval.ends_at > recent, PersonalPhoneApproval.created_at > recent)
    )
    mine = list(db.session.scalars(query.limit(HOME_SHOWN)))
    return {"my_requests": mine, "now": now}

"""Staff for approvals tests: the relay scenario's trip and leader, two Headteachers with
registered numbers, the office, and a notification number (NOTIFY_FROM)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import pytest
from sqlalchemy import select

from tests.helpers import UserRef
from tests.relay.scenario import e164
from tripcomms.approvals import operations as ops
from tripcomms.approvals.models import PersonalPhoneApproval
from tripcomms.audit.models import AuditEvent
from tripcomms.auth.models import User
from tripcomms.extensions import db
from tripcomms.trips.models import Trip

NOTIFY = "+447401234599"
LEADER_OWN = e164(900)  # the scenario's leader's registered personal number
HEAD_OWN = e164(950)
DEPUTY_OWN = e164(951)
HELPER_OWN = e164(952)


@dataclass
class People:
    """The scenario's staff, and two Headteachers who can decide."""

    app: object
    trip_id: int
    leader: UserRef
    helper: UserRef
    head: UserRef
    deputy: UserRef
    office: UserRef

    def ask(
        self,
        owner: UserRef | None = None,
        number: str = LEADER_OWN,
        reason: str = "Both school phones are with the other group",
        *,
        actor: UserRef | None = None,
        trip_id: int | None = None,
        starts_at: datetime | None = None,
        ends_at: datetime | None = None,
    ) -> int:
        owner = owner or self.leader
        with self.app.app_context():
            approval = ops.request_approval(
                db.session.get(User, (actor or owner).id),
                db.session.get(Trip, trip_id or self.trip_id),
                db.session.get(User, owner.id),
                number,
                reason,
                starts_at=starts_at,
                ends_at=ends_at,
            )
            db.session.commit()
            return approval.id

    def approve(self, approval_id: int, by: UserRef | None = None, conditions: str = "") -> None:
        with self.app.app_context():
            ops.approve(
                db.session.get(User, (by or self.head).id),
                db.session.get(PersonalPhoneApproval, approval_id),
                conditions,
            )
            db.session.commit()

    def revoke(self, approval_id: int, reason: str = "A school phone is back") -> None:
        with self.app.app_context():
            ops.revoke(
                db.session.get(User, self.head.id),
                db.session.get(PersonalPhoneApproval, approval_id),
                reason,
            )
            db.session.commit()

    def approval(self, approval_id: int) -> PersonalPhoneApproval:
        with self.app.app_context():
            approval = db.session.get(PersonalPhoneApproval, approval_id)
            assert approval is not None
            approval.trip  # noqa: B018  (loaded: states are read against the trip)
            db.session.expunge_all()
            return approval

    def audit(self, prefix: str = "approval.") -> list[AuditEvent]:
        with self.app.app_context():
            events = list(
                db.session.scalars(
                    select(AuditEvent)
                    .where(AuditEvent.action.startswith(prefix))
                    .order_by(AuditEvent.seq)
                )
            )
            db.session.expunge_all()
            return events

    def actions(self, prefix: str = "approval.") -> list[str]:
        return [e.action for e in self.audit(prefix)]


@pytest.fixture
def people(scenario, factory) -> People:
    head = factory.user("head", name="Helen Head", personal_numbers=(HEAD_OWN,))
    deputy = factory.user("head", name="Dan Deputy", personal_numbers=(DEPUTY_OWN,))
    office = factory.user("office", name="Olive Office")
    with scenario.app.app_context():
        # The helper registers a number too, so the office can ask on her behalf.
        from tripcomms.auth import operations as auth_ops

        helper = db.session.get(User, scenario.helper.id)
        admin = db.session.get(User, head.id)
        auth_ops.update_user(
            admin,
            helper,
            email=helper.email,
            name=helper.name,
            roles=helper.roles,
            personal_numbers=[HELPER_OWN],
        )
        db.session.commit()
    return People(
        scenario.app, scenario.trip_id, scenario.leader, scenario.helper, head, deputy, office
    )


def local_time(moment: datetime) -> str:
    from tripcomms.localtime import to_local

    local = to_local(moment)
    assert local is not None
    return local.strftime("%Y-%m-%dT%H:%M")

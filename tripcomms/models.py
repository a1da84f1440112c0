"""Imports every package's models, so the metadata and Alembic see all tables."""

from tripcomms.approvals.models import PersonalPhoneApproval
from tripcomms.audit.models import AuditEvent, audit_head
from tripcomms.auth.models import StaffNumber, User, UserRole
from tripcomms.phones.models import Booking, Loan, Phone, PhoneEvent
from tripcomms.relay.models import (
    Broadcast,
    DeliveryEvent,
    Message,
    NumberAllocation,
    OptOut,
    ProxyNumber,
)
from tripcomms.safeguarding.models import Concern, ConcernUpdate, ResponseEscalation
from tripcomms.trips.models import (
    Contact,
    ContactLink,
    Pupil,
    Trip,
    TripContact,
    TripPupil,
    trip_staff,
)

__all__ = [
    "AuditEvent",
    "Booking",
    "Broadcast",
    "Concern",
    "ConcernUpdate",
    "Contact",
    "ContactLink",
    "DeliveryEvent",
    "Loan",
    "Message",
    "NumberAllocation",
    "OptOut",
    "PersonalPhoneApproval",
    "Phone",
    "PhoneEvent",
    "ProxyNumber",
    "Pupil",
    "ResponseEscalation",
    "StaffNumber",
    "Trip",
    "TripContact",
    "TripPupil",
    "User",
    "UserRole",
    "audit_head",
    "trip_staff",
]

"""Imports every package's models, so the metadata and Alembic see all tables."""

from tripcomms.approvals.models import PersonalPhoneApproval
from tripcomms.audit.models import AuditEvent, audit_head
from tripcomms.auth.models import StaffNumber, User, UserRole
from tripcomms.phones.models import Booking, Loan, Phone, PhoneEvent
from tripcomms.relay.models import (
    Broadcast,
    DeliveryEvent,
    Message,
    MessageTemplate,
    NumberAllocation,
    OptOut,
    ProxyNumber,
    ReadMarker,
    SendKey,
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
    "MessageTemplate",
    "NumberAllocation",
    "OptOut",
    "PersonalPhoneApproval",
    "Phone",
    "PhoneEvent",
    "ProxyNumber",
    "Pupil",
    "ReadMarker",
    "ResponseEscalation",
    "SendKey",
    "StaffNumber",
    "Trip",
    "TripContact",
    "TripPupil",
    "User",
    "UserRole",
    "audit_head",
    "trip_staff",
]

"""Imports every package's models, so the metadata and Alembic see all tables."""

from tripcomms.audit.models import AuditEvent, audit_head
from tripcomms.auth.models import StaffNumber, User, UserRole

__all__ = ["AuditEvent", "StaffNumber", "User", "UserRole", "audit_head"]

"""Staff users, their roles and their registered personal mobile numbers."""

from __future__ import annotations

import secrets
from datetime import datetime
from enum import StrEnum

from flask_login import UserMixin
from sqlalchemy import Boolean, Enum, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from tripcomms.extensions import db
from tripcomms.types import UTCDateTime, utcnow


class Role(StrEnum):
    OFFICE = "office"
    LEADER = "leader"
    HEAD = "head"
    DSL = "dsl"
    AUDITOR = "auditor"
    ADMIN = "admin"

    @property
    def label(self) -> str:
        return ROLE_LABELS[self]


ROLE_LABELS = {
    Role.OFFICE: "Office",
    Role.LEADER: "Trip leader",
    Role.HEAD: "Headteacher",
    Role.DSL: "Safeguarding lead",
    Role.AUDITOR: "Auditor",
    Role.ADMIN: "Administrator",
}

# The Headteacher may do everything a leader and the office may (see the design's roles table).
IMPLIED_ROLES = {Role.HEAD: {Role.OFFICE, Role.LEADER}}


def new_session_token() -> str:
    return secrets.token_hex(16)


class User(UserMixin, db.Model):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    password_hash: Mapped[str] = mapped_column(String(255))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Part of the login cookie; replaced on password change or deactivation so that every
    # session that user had open ends.
    session_token: Mapped[str] = mapped_column(String(32), default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    role_rows: Mapped[list[UserRole]] = relationship(
        back_populates="user", cascade="all, delete-orphan", lazy="selectin"
    )
    personal_numbers: Mapped[list[StaffNumber]] = relationship(
        back_populates="user",
        cascade="all, delete-orphan",
        lazy="selectin",
        order_by="StaffNumber.id",
    )

    def __repr__(self) -> str:
        return f"<User {self.id} {self.email}>"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"

    @property
    def roles(self) -> set[Role]:
        return {row.role for row in self.role_rows}

    @property
    def effective_roles(self) -> set[Role]:
        held = self.roles
        return held.union(*(IMPLIED_ROLES.get(role, set()) for role in held))

    def has_role(self, *roles: Role | str) -> bool:
        """True if the user holds (or is implied to hold) any of ``roles``."""
        effective = self.effective_roles
        return any(Role(role) in effective for role in roles)


class UserRole(db.Model):
    __tablename__ = "user_roles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    role: Mapped[Role] = mapped_column(
        Enum(
            Role,
            native_enum=False,
            create_constraint=True,
            length=16,
            name="role",
            values_callable=lambda roles: [r.value for r in roles],
        ),
        primary_key=True,
    )

    user: Mapped[User] = relationship(back_populates="role_rows")


class StaffNumber(db.Model):
    """A staff member's personal mobile: never given to parents, relayed only with approval."""

    __tablename__ = "staff_numbers"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    number: Mapped[str] = mapped_column(String(20), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    user: Mapped[User] = relationship(back_populates="personal_numbers")

"""message sender index: find a number's texts on a trip without scanning the trip's log

Revision ID: 0009_message_sender_index
Revises: 0008_record
Create Date: 2026-11-24 13:00:00

Every parent's text asks, for each staff phone it is forwarded to, whether that phone has
used #codes on the trip (the forward then leaves out the "Reply: #12" hint). Without this
index the question walked every message of the trip, so a busy trip's texts got slower as
its log grew. A plain CREATE INDEX: no batch mode, so the search triggers on SQLite stay.
"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0009_message_sender_index'
down_revision = '0008_record'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index("ix_messages_from_trip", "messages", ["from_number", "trip_id"])


def downgrade():
    op.drop_index("ix_messages_from_trip", table_name="messages")

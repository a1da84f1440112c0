"""outbox: remember an attempt whose outcome is unknown

Revision ID: 0011_unknown_outcome
Revises: 0010_concern_notices
Create Date: 2026-11-26 10:00:00

Twilio's Messages create has no idempotency key. When a send times out after the request may
have reached Twilio, or a sender dies holding a lease, the outbox must look for the text at
Twilio before sending it again; these columns say when the uncertain attempt started.

Plain ADD/DROP COLUMN, not batch mode: on SQLite batch mode would copy the messages table and
drop the full-text triggers of 0008 (DROP COLUMN needs SQLite 3.35).
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0011_unknown_outcome'
down_revision = '0010_concern_notices'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('messages', sa.Column('attempt_started_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('messages', sa.Column('unknown_outcome_at', sa.DateTime(timezone=True), nullable=True))


def downgrade():
    op.drop_column('messages', 'unknown_outcome_at')
    op.drop_column('messages', 'attempt_started_at')

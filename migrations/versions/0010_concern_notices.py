"""concern notices hang on their concern, not on the message the concern is about

Revision ID: 0010_concern_notices
Revises: 0009_message_sender_index
Create Date: 2026-11-26 10:00:00

A text that tells the safeguarding lead or the Headteacher about a concern was linked to the
message the concern is about through messages.caused_by_id; a late-reply notice to the office
likewise to the parent's text. caused_by now means only the relay's own replies and forwards
to an inbound text, so:

- concern_notices links each concern notice to its concern. The rows come from the notices
  already sent (kind 'notify', note 'concern #<id>', the note every concern notice carries).
- concern notices, and the notices that response_escalations.notice_id names, lose their
  caused_by_id.

The downgrade puts caused_by_id back from those two links, then drops the table. Only
messages.caused_by_id changes on messages (no body), so SQLite's full-text triggers on
messages are untouched.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010_concern_notices'
down_revision = '0009_message_sender_index'
branch_labels = None
depends_on = None

CONCERN_NOTE = "concern #"


def upgrade():
    op.create_table('concern_notices',
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('concern_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['concern_id'], ['concerns.id'], name=op.f('fk_concern_notices_concern_id_concerns')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_concern_notices_message_id_messages')),
    sa.PrimaryKeyConstraint('message_id', name=op.f('pk_concern_notices'))
    )
    with op.batch_alter_table('concern_notices', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_concern_notices_concern_id'), ['concern_id'], unique=False)

    # The notices sent so far: "concern #12" names concern 12.
    op.execute(
        sa.text(
            "INSERT INTO concern_notices (message_id, concern_id) "
            "SELECT m.id, c.id FROM messages m JOIN concerns c "
            "ON m.note = :prefix || CAST(c.id AS VARCHAR(20)) "
            "WHERE m.kind = 'notify' AND m.direction = 'out'"
        ).bindparams(prefix=CONCERN_NOTE)
    )
    op.execute(
        "UPDATE messages SET caused_by_id = NULL "
        "WHERE id IN (SELECT message_id FROM concern_notices) "
        "OR id IN (SELECT notice_id FROM response_escalations WHERE notice_id IS NOT NULL)"
    )


def downgrade():
    op.execute(
        "UPDATE messages SET caused_by_id = ("
        "SELECT c.message_id FROM concern_notices n JOIN concerns c ON c.id = n.concern_id "
        "WHERE n.message_id = messages.id) "
        "WHERE id IN (SELECT message_id FROM concern_notices)"
    )
    op.execute(
        "UPDATE messages SET caused_by_id = ("
        "SELECT e.message_id FROM response_escalations e WHERE e.notice_id = messages.id) "
        "WHERE id IN (SELECT notice_id FROM response_escalations WHERE notice_id IS NOT NULL)"
    )
    with op.batch_alter_table('concern_notices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_concern_notices_concern_id'))

    op.drop_table('concern_notices')

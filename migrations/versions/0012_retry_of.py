"""a text sent again links to the failed text it repeats, not through caused_by

Revision ID: 0012_retry_of
Revises: 0011_unknown_outcome
Create Date: 2026-11-27 10:00:00

A failed text to a parent sent again from the inbox was linked to the failed text through
messages.caused_by_id. caused_by now means only the relay's own replies and forwards to an
inbound text, so a text sent again names the failed text in messages.retry_of_id (unique: a
failed text is sent again at most once) and keeps the failed text's own caused_by_id.

The rows moved are those the inbox's "Send again" wrote: an outbound text to a parent (kind
to_contact or broadcast, sent from the web) whose caused_by_id names an outbound text to a
parent. Nothing else is ever caused by an outbound text (0010 took the notices off
caused_by). Those not blocked are the texts sent again, each with its "message.retried" event
in the audit trail: they get retry_of_id. A blocked attempt to send again was never sent (its
event is "message.blocked"): it gets no retry_of_id, as a blocked attempt gets none now. All
of them take the cause of the text they repeat, the first of a chain when a text sent again
failed and was sent again in turn.

Plain ADD/DROP COLUMN, not batch mode: on SQLite batch mode would copy the messages table,
which drops the full-text triggers of 0008 and, with foreign keys on, cannot drop a messages
table that other rows refer to. SQLite adds the foreign key inline with the column (it has no
ALTER TABLE ADD CONSTRAINT); DROP COLUMN needs SQLite 3.35, as 0011 does.

The downgrade puts caused_by_id back to the failed text for the texts sent again. A blocked
attempt keeps the cause it took: which failed text it repeated is kept in the audit trail
only for attempts made after this migration.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0012_retry_of'
down_revision = '0011_unknown_outcome'
branch_labels = None
depends_on = None

FK_NAME = 'fk_messages_retry_of_id_messages'

# An outbound text to a parent whose caused_by_id names another: written by "Send again".
SENT_AGAIN = (
    "direction = 'out' AND kind IN ('to_contact', 'broadcast') AND via = 'web' "
    "AND caused_by_id IN ("
    "SELECT f.id FROM messages f WHERE f.direction = 'out' "
    "AND f.kind IN ('to_contact', 'broadcast'))"
)


def upgrade():
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE messages ADD COLUMN retry_of_id INTEGER "
            f"CONSTRAINT {FK_NAME} REFERENCES messages (id)"
        )
    else:
        op.add_column('messages', sa.Column('retry_of_id', sa.Integer(), nullable=True))
        op.create_foreign_key(FK_NAME, 'messages', 'messages', ['retry_of_id'], ['id'])

    op.execute(
        f"UPDATE messages SET retry_of_id = caused_by_id WHERE status <> 'blocked' AND {SENT_AGAIN}"
    )
    # Each takes the cause of the text it repeats, which may itself have been a text sent
    # again: one step up a chain of them for each pass, until none is caused by such a text.
    bind = op.get_bind()
    while bind.execute(
        sa.text(
            "UPDATE messages SET caused_by_id = ("
            "SELECT f.caused_by_id FROM messages f WHERE f.id = messages.caused_by_id) "
            f"WHERE {SENT_AGAIN}"
        )
    ).rowcount:
        pass
    op.create_index('ix_messages_retry_of_id', 'messages', ['retry_of_id'], unique=True)


def downgrade():
    op.drop_index('ix_messages_retry_of_id', table_name='messages')
    op.execute(
        "UPDATE messages SET caused_by_id = retry_of_id WHERE retry_of_id IS NOT NULL"
    )
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE messages DROP COLUMN retry_of_id")
    else:
        op.drop_constraint(FK_NAME, 'messages', type_='foreignkey')
        op.drop_column('messages', 'retry_of_id')

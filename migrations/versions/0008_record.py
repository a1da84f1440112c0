"""record: full-text index on messages, concerns, response escalations

Revision ID: 0008_record
Revises: 0007_merge_inbox_approvals
Create Date: 2026-11-25 10:00:00

Text search of the communication log uses each database's own full-text index:

- SQLite: an external-content FTS5 table over messages.body (no second copy of the text),
  kept current by triggers in the same transaction as the change to messages. The update
  trigger fires only when the body changes (retention's redaction), not on every status
  change the outbox writes. Alembic's batch mode copies and drops a table on SQLite, which
  drops its triggers: a later migration that batch-alters messages must put these back
  (tests/audit/test_log_search.py checks they are there).
- PostgreSQL: a GIN index on to_tsvector('simple', body), an expression index that the
  database keeps current by itself. Word search matches what people type when they search a
  log ("inhaler", "coach late"); 'simple' neither stems nor drops stop words, so both databases
  find the same words. pg_trgm would also find fragments of words but needs an extension
  (and its privileges) and a far larger index.
"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008_record'
down_revision = '0007_merge_inbox_approvals'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('concerns',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('trip_id', sa.Integer(), nullable=True),
    sa.Column('message_id', sa.Integer(), nullable=True),
    sa.Column('contact_id', sa.Integer(), nullable=True),
    sa.Column('category', sa.String(length=24), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('raised_by_id', sa.Integer(), nullable=True),
    sa.Column('rule', sa.String(length=24), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('outcome', sa.String(length=24), nullable=True),
    sa.Column('handler_id', sa.Integer(), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('notified', sa.Boolean(), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_concerns_contact_id_contacts')),
    sa.ForeignKeyConstraint(['handler_id'], ['users.id'], name=op.f('fk_concerns_handler_id_users')),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_concerns_message_id_messages')),
    sa.ForeignKeyConstraint(['raised_by_id'], ['users.id'], name=op.f('fk_concerns_raised_by_id_users')),
    sa.ForeignKeyConstraint(['trip_id'], ['trips.id'], name=op.f('fk_concerns_trip_id_trips')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_concerns'))
    )
    with op.batch_alter_table('concerns', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_concerns_contact_id'), ['contact_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_concerns_message_id'), ['message_id'], unique=False)
        batch_op.create_index('ix_concerns_status_created', ['status', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_concerns_trip_id'), ['trip_id'], unique=False)

    op.create_table('concern_updates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('concern_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('from_status', sa.String(length=16), nullable=True),
    sa.Column('to_status', sa.String(length=16), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('outcome', sa.String(length=24), nullable=True),
    sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_concern_updates_actor_id_users')),
    sa.ForeignKeyConstraint(['concern_id'], ['concerns.id'], name=op.f('fk_concern_updates_concern_id_concerns')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_concern_updates'))
    )
    with op.batch_alter_table('concern_updates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_concern_updates_concern_id'), ['concern_id'], unique=False)

    op.create_table('response_escalations',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('notice_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_response_escalations_message_id_messages')),
    sa.ForeignKeyConstraint(['notice_id'], ['messages.id'], name=op.f('fk_response_escalations_notice_id_messages')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_response_escalations')),
    sa.UniqueConstraint('message_id', name=op.f('uq_response_escalations_message_id'))
    )

    # Plain CREATE INDEX, not batch mode: on SQLite batch mode would copy the messages table.
    op.create_index('ix_messages_created_at', 'messages', ['created_at'], unique=False)
    install_text_index()


def install_text_index():
    """The full-text index over messages.body, filled from the rows already there."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE messages_fts USING fts5(body, content='messages', "
            "content_rowid='id', tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE TRIGGER messages_fts_insert AFTER INSERT ON messages BEGIN "
            "INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body); END"
        )
        op.execute(
            "CREATE TRIGGER messages_fts_delete AFTER DELETE ON messages BEGIN "
            "INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body); "
            "END"
        )
        op.execute(
            "CREATE TRIGGER messages_fts_update AFTER UPDATE OF body ON messages BEGIN "
            "INSERT INTO messages_fts(messages_fts, rowid, body) VALUES ('delete', old.id, old.body); "
            "INSERT INTO messages_fts(rowid, body) VALUES (new.id, new.body); END"
        )
        op.execute("INSERT INTO messages_fts(messages_fts) VALUES ('rebuild')")
    else:
        op.execute(
            "CREATE INDEX ix_messages_body_fts ON messages "
            "USING gin (to_tsvector('simple', body))"
        )


def drop_text_index():
    if op.get_bind().dialect.name == "sqlite":
        for name in ("insert", "delete", "update"):
            op.execute(f"DROP TRIGGER IF EXISTS messages_fts_{name}")
        op.execute("DROP TABLE IF EXISTS messages_fts")
    else:
        op.execute("DROP INDEX IF EXISTS ix_messages_body_fts")


def downgrade():
    drop_text_index()
    op.drop_index('ix_messages_created_at', table_name='messages')
    op.drop_table('response_escalations')
    with op.batch_alter_table('concern_updates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_concern_updates_concern_id'))

    op.drop_table('concern_updates')
    with op.batch_alter_table('concerns', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_concerns_trip_id'))
        batch_op.drop_index('ix_concerns_status_created')
        batch_op.drop_index(batch_op.f('ix_concerns_message_id'))
        batch_op.drop_index(batch_op.f('ix_concerns_contact_id'))

    op.drop_table('concerns')

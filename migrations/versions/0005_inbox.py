"""inbox: read markers, one-time send keys, message templates

Revision ID: 0005_inbox
Revises: 0004_relay
Create Date: 2026-11-24 09:54:22.952846

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005_inbox'
down_revision = '0004_relay'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('message_templates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_message_templates_created_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_templates')),
    sa.UniqueConstraint('name', name=op.f('uq_message_templates_name'))
    )
    # One row per member of staff and thread (a trip and a parent); looked up by user and
    # trip, which the unique constraint's index serves.
    op.create_table('read_markers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('trip_id', sa.Integer(), nullable=False),
    sa.Column('contact_id', sa.Integer(), nullable=False),
    sa.Column('last_read_message_id', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_read_markers_contact_id_contacts')),
    sa.ForeignKeyConstraint(['trip_id'], ['trips.id'], name=op.f('fk_read_markers_trip_id_trips')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_read_markers_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_read_markers')),
    sa.UniqueConstraint('user_id', 'trip_id', 'contact_id', name=op.f('uq_read_markers_user_id_trip_id_contact_id'))
    )
    # The unique key makes a second click on "Send" find the first one's message.
    op.create_table('send_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('message_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['message_id'], ['messages.id'], name=op.f('fk_send_keys_message_id_messages')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_send_keys_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_send_keys')),
    sa.UniqueConstraint('key', name=op.f('uq_send_keys_key'))
    )


def downgrade():
    op.drop_table('send_keys')
    op.drop_table('read_markers')
    op.drop_table('message_templates')

"""approvals: personal-phone approvals

One table, personal_phone_approvals: a request to use a registered personal number on a trip
over a window, and the Headteacher's decision, revocation or expiry. The number is kept as
text (no key to staff_numbers) so that removing a number from a user keeps the history.

Revision ID: 0006_approvals
Revises: 0004_relay
Create Date: 2026-11-24 10:02:08.378808

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0006_approvals'
down_revision = '0004_relay'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('personal_phone_approvals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trip_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('requested_by_id', sa.Integer(), nullable=True),
    sa.Column('number', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=500), nullable=False),
    sa.Column('starts_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('ends_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('school_phones_free', sa.Integer(), nullable=False),
    sa.Column('state', sa.Enum('pending', 'approved', 'denied', 'revoked', 'expired', name='state', native_enum=False, create_constraint=True, length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('decided_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('decided_by_id', sa.Integer(), nullable=True),
    sa.Column('decided_via', sa.Enum('web', 'sms', name='decided_via', native_enum=False, create_constraint=True, length=8), nullable=True),
    sa.Column('decision_note', sa.String(length=500), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_by_id', sa.Integer(), nullable=True),
    sa.Column('revoke_reason', sa.String(length=500), nullable=False),
    sa.Column('expired_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expiry_reason', sa.String(length=100), nullable=False),
    sa.Column('first_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['decided_by_id'], ['users.id'], name=op.f('fk_personal_phone_approvals_decided_by_id_users')),
    sa.ForeignKeyConstraint(['requested_by_id'], ['users.id'], name=op.f('fk_personal_phone_approvals_requested_by_id_users')),
    sa.ForeignKeyConstraint(['revoked_by_id'], ['users.id'], name=op.f('fk_personal_phone_approvals_revoked_by_id_users')),
    sa.ForeignKeyConstraint(['trip_id'], ['trips.id'], name=op.f('fk_personal_phone_approvals_trip_id_trips')),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_personal_phone_approvals_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_personal_phone_approvals'))
    )
    with op.batch_alter_table('personal_phone_approvals', schema=None) as batch_op:
        batch_op.create_index('ix_personal_phone_approvals_state_created', ['state', 'created_at'], unique=False)
        batch_op.create_index('ix_personal_phone_approvals_trip_state', ['trip_id', 'state'], unique=False)
        batch_op.create_index(batch_op.f('ix_personal_phone_approvals_user_id'), ['user_id'], unique=False)


def downgrade():
    with op.batch_alter_table('personal_phone_approvals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_personal_phone_approvals_user_id'))
        batch_op.drop_index('ix_personal_phone_approvals_trip_state')
        batch_op.drop_index('ix_personal_phone_approvals_state_created')

    op.drop_table('personal_phone_approvals')

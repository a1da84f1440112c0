"""merge the inbox and approvals branches

0005_inbox and 0006_approvals were written side by side, both on top of 0004_relay. They touch
different tables, so joining them needs no change to the schema; this revision only makes one
head again, so that `flask --app tripcomms db upgrade` has one place to go.

Revision ID: 0007_merge_inbox_approvals
Revises: 0005_inbox, 0006_approvals
Create Date: 2026-11-24 10:37:33.371715

"""


# revision identifiers, used by Alembic.
revision = '0007_merge_inbox_approvals'
down_revision = ('0005_inbox', '0006_approvals')
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass

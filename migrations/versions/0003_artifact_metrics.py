"""artifact metrics: quality measures stored with each artifact (separation stems)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 12:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('artifacts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('metrics', sa.JSON(), nullable=True))


def downgrade():
    with op.batch_alter_table('artifacts', schema=None) as batch_op:
        batch_op.drop_column('metrics')

"""lyrics revisions: every edit of a song's lyrics is kept

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21 08:50:00

"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mssql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('lyrics_revisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('song_id', sa.String(length=36), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('text', sa.UnicodeText().with_variant(mssql.NVARCHAR(None), 'mssql'), nullable=False),
    sa.Column('author_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['author_id'], ['users.id'], ),
    sa.ForeignKeyConstraint(['song_id'], ['songs.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('song_id', 'number', name='uq_lyrics_revisions_song_number')
    )
    with op.batch_alter_table('lyrics_revisions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_lyrics_revisions_song_id'), ['song_id'], unique=False)


def downgrade():
    with op.batch_alter_table('lyrics_revisions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_lyrics_revisions_song_id'))
    op.drop_table('lyrics_revisions')

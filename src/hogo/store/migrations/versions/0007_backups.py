"""backup catalog: every completed backup, its places, method, retention, verifications and disposal
(ANON-19, SEC-51, SEC-151(3))

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

import hogo.store.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('backups',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('engine', sa.String(length=20), nullable=False),
    sa.Column('method', sa.String(length=200), nullable=False),
    sa.Column('schema_revision', sa.String(length=32), nullable=True),
    sa.Column('importance', sa.String(length=20), nullable=False),
    sa.Column('size_bytes', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('targets', hogo.store.types.JSONText(), nullable=False),
    sa.Column('log_size', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('created_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('retention_days', sa.Integer(), nullable=False),
    sa.Column('expires_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('verified_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('verification', hogo.store.types.JSONText(), nullable=True),
    sa.Column('disposed_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('disposal', hogo.store.types.JSONText(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_backups'))
    )
    op.create_index('ix_backups_status_expires', 'backups', ['status', 'expires_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_backups_status_expires', table_name='backups')
    op.drop_table('backups')

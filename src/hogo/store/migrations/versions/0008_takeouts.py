"""take-outs: the take-out register (持出管理簿) of take-outs and provisions with their approval, transport,
due date, and return or disposal confirmed by another person (SEC-47..49, MN-5c, MN-6d, SEC-26..27)

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

import hogo.store.types

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('takeouts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('file_code', sa.String(length=63), nullable=False),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('requester_name', sa.String(length=63), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=False),
    sa.Column('fields', hogo.store.types.JSONText(), nullable=False),
    sa.Column('selection', hogo.store.types.JSONText(), nullable=True),
    sa.Column('purpose', sa.String(length=200), nullable=False),
    sa.Column('recipient', sa.String(length=200), nullable=False),
    sa.Column('recipient_mode', sa.String(length=12), nullable=False),
    sa.Column('recipient_key', sa.Text(), nullable=True),
    sa.Column('outside_scope', sa.Boolean(), nullable=False),
    sa.Column('destination', sa.String(length=200), nullable=False),
    sa.Column('transport', sa.String(length=14), nullable=False),
    sa.Column('media_id', sa.String(length=64), nullable=True),
    sa.Column('due_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('due_date', sa.String(length=16), nullable=False),
    sa.Column('marks', hogo.store.types.JSONText(), nullable=False),
    sa.Column('note', sa.String(length=1000), nullable=True),
    sa.Column('emergency', sa.Boolean(), nullable=False),
    sa.Column('report_due_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('report_alerted_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('approved_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('taken_out_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('downloads', sa.Integer(), nullable=False),
    sa.Column('package_id', sa.String(length=80), nullable=True),
    sa.Column('package_sha256', sa.String(length=64), nullable=True),
    sa.Column('record_count', sa.Integer(), nullable=True),
    sa.Column('overdue_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('overdue_alert_id', sa.Integer(), nullable=True),
    sa.Column('reminded_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reminders', sa.Integer(), nullable=False),
    sa.Column('declared', sa.String(length=10), nullable=True),
    sa.Column('declared_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('declared_note', sa.String(length=1000), nullable=True),
    sa.Column('closed_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_by_id', sa.Integer(), nullable=True),
    sa.Column('confirmed_by_name', sa.String(length=63), nullable=True),
    sa.Column('confirm_note', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['confirmed_by_id'], ['users.id'], name=op.f('fk_takeouts_confirmed_by_id_users')),
    sa.ForeignKeyConstraint(['file_id'], ['personal_data_files.id'], name=op.f('fk_takeouts_file_id_personal_data_files')),
    sa.ForeignKeyConstraint(['request_id'], ['approval_requests.id'], name=op.f('fk_takeouts_request_id_approval_requests')),
    sa.ForeignKeyConstraint(['requester_id'], ['users.id'], name=op.f('fk_takeouts_requester_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_takeouts')),
    sa.UniqueConstraint('request_id', name=op.f('uq_takeouts_request_id'))
    )
    with op.batch_alter_table('takeouts', schema=None) as batch_op:
        batch_op.create_index('ix_takeouts_requester', ['requester_id', 'created_at'], unique=False)
        batch_op.create_index('ix_takeouts_status_due', ['status', 'due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('takeouts', schema=None) as batch_op:
        batch_op.drop_index('ix_takeouts_status_due')
        batch_op.drop_index('ix_takeouts_requester')

    op.drop_table('takeouts')

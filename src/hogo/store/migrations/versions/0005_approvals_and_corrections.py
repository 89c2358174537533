"""approvals and corrections: approval requests of any kind with their steps and decisions (SEC-19),
and the previous versions of records a correction replaced (ANON-8)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

import hogo.store.types

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('approval_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('requester_id', sa.Integer(), nullable=False),
    sa.Column('requester_name', sa.String(length=63), nullable=False),
    sa.Column('subject_user_id', sa.Integer(), nullable=True),
    sa.Column('file_id', sa.Integer(), nullable=True),
    sa.Column('file_code', sa.String(length=63), nullable=True),
    sa.Column('record_id', sa.String(length=64), nullable=True),
    sa.Column('purpose', sa.String(length=200), nullable=True),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('fields', hogo.store.types.JSONText(), nullable=False),
    sa.Column('base_revision', sa.Integer(), nullable=True),
    sa.Column('payload_binding', sa.String(length=80), nullable=True),
    sa.Column('payload', sa.LargeBinary(), nullable=True),
    sa.Column('steps', hogo.store.types.JSONText(), nullable=False),
    sa.Column('outcome', hogo.store.types.JSONText(), nullable=True),
    sa.Column('created_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('decided_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('applied_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['file_id'], ['personal_data_files.id'], name=op.f('fk_approval_requests_file_id_personal_data_files')),
    sa.ForeignKeyConstraint(['requester_id'], ['users.id'], name=op.f('fk_approval_requests_requester_id_users')),
    sa.ForeignKeyConstraint(['subject_user_id'], ['users.id'], name=op.f('fk_approval_requests_subject_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_requests'))
    )
    with op.batch_alter_table('approval_requests', schema=None) as batch_op:
        batch_op.create_index('ix_approval_requests_requester', ['requester_id', 'created_at'], unique=False)
        batch_op.create_index('ix_approval_requests_status_created', ['status', 'created_at'], unique=False)
        batch_op.create_index('ix_approval_requests_subject', ['file_code', 'record_id'], unique=False)

    op.create_table('approval_decisions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('request_id', sa.Integer(), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('decision', sa.String(length=10), nullable=False),
    sa.Column('role', sa.String(length=40), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=True),
    sa.Column('approver_id', sa.Integer(), nullable=False),
    sa.Column('approver_name', sa.String(length=63), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=True),
    sa.Column('decided_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['approver_id'], ['users.id'], name=op.f('fk_approval_decisions_approver_id_users')),
    sa.ForeignKeyConstraint(['request_id'], ['approval_requests.id'], name=op.f('fk_approval_decisions_request_id_approval_requests'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_approval_decisions')),
    sa.UniqueConstraint('request_id', 'step', name='uq_approval_decisions_step')
    )
    op.create_table('record_versions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('revision', sa.Integer(), nullable=False),
    sa.Column('segment', sa.String(length=100), nullable=True),
    sa.Column('key_version', sa.Integer(), nullable=False),
    sa.Column('blob', sa.LargeBinary(), nullable=False),
    sa.Column('replaced_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('replaced_by_id', sa.Integer(), nullable=True),
    sa.Column('request_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['file_id'], ['personal_data_files.id'], name=op.f('fk_record_versions_file_id_personal_data_files')),
    sa.ForeignKeyConstraint(['request_id'], ['approval_requests.id'], name=op.f('fk_record_versions_request_id_approval_requests')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_record_versions')),
    sa.UniqueConstraint('file_id', 'record_id', 'revision', name='uq_record_versions_revision')
    )


def downgrade() -> None:
    op.drop_table('record_versions')
    op.drop_table('approval_decisions')
    with op.batch_alter_table('approval_requests', schema=None) as batch_op:
        batch_op.drop_index('ix_approval_requests_subject')
        batch_op.drop_index('ix_approval_requests_status_created')
        batch_op.drop_index('ix_approval_requests_requester')

    op.drop_table('approval_requests')

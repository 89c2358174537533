"""classification marks history and working copies (issue 5): every change of a file's marks with
before/after, who, why and when (SEC-46(3)); temporary working copies, their sealed data and their
disposal records (ANON-17)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

import hogo.store.types

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('marks_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('file_code', sa.String(length=63), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('before', hogo.store.types.JSONText(), nullable=False),
    sa.Column('after', hogo.store.types.JSONText(), nullable=False),
    sa.Column('changed_by_id', sa.Integer(), nullable=False),
    sa.Column('changed_by_name', sa.String(length=63), nullable=False),
    sa.Column('basis', sa.String(length=20), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('changed_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['changed_by_id'], ['users.id'], name=op.f('fk_marks_changes_changed_by_id_users')),
    sa.ForeignKeyConstraint(['file_id'], ['personal_data_files.id'], name=op.f('fk_marks_changes_file_id_personal_data_files')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_marks_changes'))
    )
    with op.batch_alter_table('marks_changes', schema=None) as batch_op:
        batch_op.create_index('ix_marks_changes_file', ['file_id', 'id'], unique=False)

    op.create_table('working_copies',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('file_code', sa.String(length=63), nullable=False),
    sa.Column('department', sa.String(length=32), nullable=False),
    sa.Column('holder_id', sa.Integer(), nullable=False),
    sa.Column('holder_name', sa.String(length=63), nullable=False),
    sa.Column('purpose', sa.String(length=200), nullable=False),
    sa.Column('fields', hogo.store.types.JSONText(), nullable=False),
    sa.Column('where_fields', hogo.store.types.JSONText(), nullable=False),
    sa.Column('records', sa.Integer(), nullable=False),
    sa.Column('marks', hogo.store.types.JSONText(), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('created_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('key_provider', sa.String(length=20), nullable=True),
    sa.Column('kek_id', sa.String(length=100), nullable=True),
    sa.Column('disposed_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('disposed_by', sa.String(length=63), nullable=True),
    sa.Column('disposal_reason', sa.String(length=20), nullable=True),
    sa.Column('confirmed_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('confirmed_by', sa.String(length=63), nullable=True),
    sa.Column('confirmation_note', sa.String(length=1000), nullable=True),
    sa.ForeignKeyConstraint(['file_id'], ['personal_data_files.id'], name=op.f('fk_working_copies_file_id_personal_data_files')),
    sa.ForeignKeyConstraint(['holder_id'], ['users.id'], name=op.f('fk_working_copies_holder_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_working_copies'))
    )
    with op.batch_alter_table('working_copies', schema=None) as batch_op:
        batch_op.create_index('ix_working_copies_holder', ['holder_id', 'created_at'], unique=False)
        batch_op.create_index('ix_working_copies_status_expires', ['status', 'expires_at'], unique=False)

    op.create_table('working_copy_data',
    sa.Column('copy_id', sa.String(length=40), nullable=False),
    sa.Column('blob', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['copy_id'], ['working_copies.id'], name=op.f('fk_working_copy_data_copy_id_working_copies'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('copy_id', name=op.f('pk_working_copy_data'))
    )


def downgrade() -> None:
    op.drop_table('working_copy_data')
    with op.batch_alter_table('working_copies', schema=None) as batch_op:
        batch_op.drop_index('ix_working_copies_status_expires')
        batch_op.drop_index('ix_working_copies_holder')

    op.drop_table('working_copies')
    with op.batch_alter_table('marks_changes', schema=None) as batch_op:
        batch_op.drop_index('ix_marks_changes_file')

    op.drop_table('marks_changes')

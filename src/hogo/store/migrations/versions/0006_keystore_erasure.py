"""erasure, deletion certificates, retention and the key store (issue 5): deletion records with their
signed certificates and contractors' certificates (ANON-10, SEC-50, MN-5d), when a file was erased, and
each record's disposal date (retention). The wrapped keys move out of ``file_keys`` into the key store
at startup (services/files.py ``move_keys_out_of_database``); the table stays, empty.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

import hogo.store.types

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('deletion_records',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('file_id', sa.Integer(), nullable=False),
    sa.Column('file_code', sa.String(length=63), nullable=False),
    sa.Column('file_name', sa.String(length=200), nullable=False),
    sa.Column('record_ids', hogo.store.types.JSONText(), nullable=False),
    sa.Column('record_count', sa.Integer(), nullable=False),
    sa.Column('fields', hogo.store.types.JSONText(), nullable=False),
    sa.Column('reason', sa.String(length=1000), nullable=False),
    sa.Column('retention_rule', hogo.store.types.JSONText(), nullable=True),
    sa.Column('versions', hogo.store.types.JSONText(), nullable=False),
    sa.Column('ordered_by_id', sa.Integer(), nullable=True),
    sa.Column('ordered_by', sa.String(length=63), nullable=False),
    sa.Column('confirmed_by', sa.String(length=63), nullable=True),
    sa.Column('confirmed_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('created_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('completed_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('certificate', sa.Text(), nullable=True),
    sa.Column('signature', sa.Text(), nullable=True),
    sa.Column('confirmation', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['file_id'], ['personal_data_files.id'], name=op.f('fk_deletion_records_file_id_personal_data_files')),
    sa.ForeignKeyConstraint(['ordered_by_id'], ['users.id'], name=op.f('fk_deletion_records_ordered_by_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_deletion_records'))
    )
    with op.batch_alter_table('deletion_records', schema=None) as batch_op:
        batch_op.create_index('ix_deletion_records_file', ['file_id', 'created_at'], unique=False)

    op.create_table('contractor_certificates',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('deletion_id', sa.Integer(), nullable=False),
    sa.Column('contractor', sa.String(length=200), nullable=False),
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('content', sa.LargeBinary(), nullable=False),
    sa.Column('attached_by', sa.String(length=63), nullable=False),
    sa.Column('attached_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['deletion_id'], ['deletion_records.id'], name=op.f('fk_contractor_certificates_deletion_id_deletion_records')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contractor_certificates'))
    )
    with op.batch_alter_table('contractor_certificates', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_contractor_certificates_deletion_id'), ['deletion_id'], unique=False)

    with op.batch_alter_table('personal_data_files', schema=None) as batch_op:
        batch_op.add_column(sa.Column('erased_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True))
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispose_after', sa.Date(), nullable=True))
        batch_op.create_index('ix_records_dispose_after', ['file_id', 'dispose_after'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('records', schema=None) as batch_op:
        batch_op.drop_index('ix_records_dispose_after')
        batch_op.drop_column('dispose_after')
    with op.batch_alter_table('personal_data_files', schema=None) as batch_op:
        batch_op.drop_column('erased_at')
    with op.batch_alter_table('contractor_certificates', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_contractor_certificates_deletion_id'))
    op.drop_table('contractor_certificates')
    with op.batch_alter_table('deletion_records', schema=None) as batch_op:
        batch_op.drop_index('ix_deletion_records_file')
    op.drop_table('deletion_records')

"""log analysis and alerts: versioned rule settings, runs with a high-water mark and a lease, alerts
and the log entries behind them (ANON-12, ANON-13, SEC-132, MN-6c)

The analysis starts at the beginning of the log: events recorded before this migration are analysed
by the first run too.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

import hogo.store.types

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dedup_key', sa.String(length=200), nullable=False),
    sa.Column('rule', sa.String(length=40), nullable=False),
    sa.Column('severity', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=14), nullable=False),
    sa.Column('subject_key', sa.String(length=150), nullable=False),
    sa.Column('subject_user_id', sa.Integer(), nullable=True),
    sa.Column('subject_name', sa.String(length=63), nullable=True),
    sa.Column('window_start', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('window_end', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('params', hogo.store.types.JSONText(), nullable=False),
    sa.Column('event_count', sa.Integer(), nullable=False),
    sa.Column('first_seq', sa.BigInteger(), nullable=False),
    sa.Column('last_seq', sa.BigInteger(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('opened_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('acknowledged_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('acknowledged_by_id', sa.Integer(), nullable=True),
    sa.Column('acknowledged_by_name', sa.String(length=63), nullable=True),
    sa.Column('ack_note', sa.String(length=1000), nullable=True),
    sa.Column('closed_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('closed_by_id', sa.Integer(), nullable=True),
    sa.Column('closed_by_name', sa.String(length=63), nullable=True),
    sa.Column('resolution', sa.String(length=1000), nullable=True),
    sa.Column('notified_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('notify_attempts', sa.Integer(), nullable=False),
    sa.Column('notify_pending', hogo.store.types.JSONText(), nullable=True),
    sa.Column('notify_error', sa.String(length=500), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts')),
    sa.UniqueConstraint('dedup_key', name=op.f('uq_alerts_dedup_key'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_rule_subject', ['rule', 'subject_key', 'window_end'], unique=False)
        batch_op.create_index('ix_alerts_status_opened', ['status', 'opened_at'], unique=False)

    op.create_table('analysis_configs',
    sa.Column('version', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('settings', hogo.store.types.JSONText(), nullable=False),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('created_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('created_by_id', sa.Integer(), nullable=True),
    sa.Column('created_by_name', sa.String(length=63), nullable=True),
    sa.Column('reviewed_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('reviewed_by_id', sa.Integer(), nullable=True),
    sa.Column('reviewed_by_name', sa.String(length=63), nullable=True),
    sa.Column('review_note', sa.String(length=500), nullable=True),
    sa.Column('review_due_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('version', name=op.f('pk_analysis_configs'))
    )
    op.create_table('analysis_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('trigger', sa.String(length=10), nullable=False),
    sa.Column('status', sa.String(length=12), nullable=False),
    sa.Column('started_at', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('finished_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('from_seq', sa.BigInteger(), nullable=False),
    sa.Column('to_seq', sa.BigInteger(), nullable=False),
    sa.Column('events', sa.Integer(), nullable=False),
    sa.Column('config_version', sa.Integer(), nullable=False),
    sa.Column('alerts_raised', sa.Integer(), nullable=False),
    sa.Column('alerts_updated', sa.Integer(), nullable=False),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_name', sa.String(length=63), nullable=True),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analysis_runs'))
    )
    with op.batch_alter_table('analysis_runs', schema=None) as batch_op:
        batch_op.create_index('ix_analysis_runs_started_at', ['started_at'], unique=False)

    op.create_table('analysis_state',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('high_water', sa.BigInteger(), nullable=False),
    sa.Column('lease_run_id', sa.Integer(), nullable=True),
    sa.Column('lease_until', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('last_run_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_analysis_state'))
    )
    op.execute(sa.text("INSERT INTO analysis_state (id, high_water) VALUES (1, -1)"))
    op.create_table('alert_events',
    sa.Column('alert_id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alert_events_alert_id_alerts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('alert_id', 'seq', name=op.f('pk_alert_events'))
    )


def downgrade() -> None:
    op.drop_table('alert_events')
    op.drop_table('analysis_state')
    with op.batch_alter_table('analysis_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_analysis_runs_started_at')

    op.drop_table('analysis_runs')
    op.drop_table('analysis_configs')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_status_opened')
        batch_op.drop_index('ix_alerts_rule_subject')

    op.drop_table('alerts')

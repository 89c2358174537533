"""tamper-evident log: entries with canonical encoding and leaf hashes, tree nodes, head, checkpoints

Existing events become the first entries of the log, in their order.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

import hogo.store.types
from hogo.domain import merkle
from hogo.domain.auditlog import LogEntry, encode

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

APPEND_ONLY_MESSAGE = "audit_events is append-only"
_OLD_INDEXES = ("ix_audit_events_actor_ts", "ix_audit_events_client_event_ts", "ix_audit_events_subject_ts")


def _old_columns() -> list[sa.Column[object]]:
    return [
        sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('ts', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column('event', sa.String(length=80), nullable=False),
        sa.Column('outcome', sa.String(length=10), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=True),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('actor_name', sa.String(length=63), nullable=True),
        sa.Column('subject_user_id', sa.Integer(), nullable=True),
        sa.Column('target', sa.String(length=200), nullable=True),
        sa.Column('client_addr', sa.String(length=64), nullable=True),
        sa.Column('session_id', sa.String(length=36), nullable=True),
        sa.Column('details', hogo.store.types.JSONText(), nullable=True),
    ]


def upgrade() -> None:
    _drop_old_triggers()
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        for name in _OLD_INDEXES:
            batch_op.drop_index(name)
    op.rename_table('audit_events', 'audit_events_v0')
    _rename_pk('audit_events_v0')

    op.create_table('audit_events',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('ts', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('event', sa.String(length=80), nullable=False),
    sa.Column('outcome', sa.String(length=10), nullable=True),
    sa.Column('reason', sa.String(length=200), nullable=True),
    sa.Column('actor_id', sa.Integer(), nullable=True),
    sa.Column('actor_name', sa.String(length=63), nullable=True),
    sa.Column('subject_user_id', sa.Integer(), nullable=True),
    sa.Column('target', sa.String(length=200), nullable=True),
    sa.Column('file_code', sa.String(length=63), nullable=True),
    sa.Column('purpose', sa.String(length=200), nullable=True),
    sa.Column('record_count', sa.Integer(), nullable=False),
    sa.Column('client_addr', sa.String(length=64), nullable=True),
    sa.Column('session_id', sa.String(length=36), nullable=True),
    sa.Column('details', hogo.store.types.JSONText(), nullable=True),
    sa.Column('entry', sa.LargeBinary(), nullable=True),
    sa.Column('leaf_hash', sa.LargeBinary(length=32), nullable=False),
    sa.Column('expired_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_actor_ts', ['actor_id', 'ts'], unique=False)
        batch_op.create_index('ix_audit_events_client_event_ts', ['client_addr', 'event', 'ts'], unique=False)
        batch_op.create_index('ix_audit_events_event_ts', ['event', 'ts'], unique=False)
        batch_op.create_index('ix_audit_events_file_ts', ['file_code', 'ts'], unique=False)
        batch_op.create_index('ix_audit_events_subject_ts', ['subject_user_id', 'ts'], unique=False)
        batch_op.create_index('ix_audit_events_ts', ['ts'], unique=False)
    op.create_table('audit_record_refs',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('record_id', sa.String(length=64), nullable=False),
    sa.Column('file_code', sa.String(length=63), nullable=False),
    sa.PrimaryKeyConstraint('seq', 'record_id', name=op.f('pk_audit_record_refs'))
    )
    with op.batch_alter_table('audit_record_refs', schema=None) as batch_op:
        batch_op.create_index('ix_audit_record_refs_lookup', ['file_code', 'record_id', 'seq'], unique=False)
    op.create_table('audit_head',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_head'))
    )
    op.create_table('audit_nodes',
    sa.Column('level', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('idx', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('hash', sa.LargeBinary(length=32), nullable=False),
    sa.PrimaryKeyConstraint('level', 'idx', name=op.f('pk_audit_nodes'))
    )
    op.create_table('audit_checkpoints',
    sa.Column('size', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('root', sa.LargeBinary(length=32), nullable=False),
    sa.Column('ts', hogo.store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('anchored_at', hogo.store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('size', name=op.f('pk_audit_checkpoints'))
    )
    op.create_table('audit_gate',
    sa.Column('id', sa.Integer(), autoincrement=False, nullable=False),
    sa.Column('open', sa.Boolean(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_gate'))
    )
    size = _carry_over_events()
    op.execute(sa.text("INSERT INTO audit_head (id, size) VALUES (1, :n)").bindparams(n=size))
    op.execute(sa.text("INSERT INTO audit_gate (id, open) VALUES (1, :f)").bindparams(f=False))
    op.drop_table('audit_events_v0')
    _create_triggers()


def _rename_pk(table: str) -> None:
    """PostgreSQL names the primary key's index in the schema: free the name for the new table."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE {table} RENAME CONSTRAINT pk_audit_events TO pk_{table}")


def _carry_over_events() -> int:
    """The events recorded so far become entries 0 … n-1 of the log, with their tree nodes."""
    bind = op.get_bind()
    old = sa.table('audit_events_v0', *_old_columns())
    new = sa.table('audit_events', sa.column('seq'), sa.column('ts', hogo.store.types.UTCDateTime()),
                   sa.column('event'), sa.column('outcome'), sa.column('reason'), sa.column('actor_id'),
                   sa.column('actor_name'), sa.column('subject_user_id'), sa.column('target'),
                   sa.column('file_code'), sa.column('purpose'), sa.column('record_count'), sa.column('client_addr'),
                   sa.column('session_id'), sa.column('details', hogo.store.types.JSONText()), sa.column('entry'),
                   sa.column('leaf_hash'), sa.column('expired_at'))
    nodes = sa.table('audit_nodes', sa.column('level'), sa.column('idx'), sa.column('hash'))
    leaves: list[bytes] = []
    for row in bind.execute(sa.select(old).order_by(old.c.id)).mappings():
        details = dict(row["details"] or {})
        file_code, purpose = details.pop("file", None), details.pop("purpose", None)
        records, fields = tuple(details.pop("records", ())), tuple(details.pop("fields", ()))
        e = LogEntry(ts=row["ts"], event=row["event"], outcome=row["outcome"], reason=row["reason"],
                     actor_id=row["actor_id"], actor=row["actor_name"], subject_user_id=row["subject_user_id"],
                     target=row["target"], file=file_code, purpose=purpose, records=records, fields=fields,
                     client=row["client_addr"], session=row["session_id"], details=details or None)
        seq = len(leaves)
        data = encode(seq, e)
        leaves.append(merkle.leaf_hash(data))
        bind.execute(sa.insert(new).values(
            seq=seq, ts=e.ts, event=e.event, outcome=e.outcome, reason=e.reason, actor_id=e.actor_id,
            actor_name=e.actor, subject_user_id=e.subject_user_id, target=e.target, file_code=file_code,
            purpose=purpose, record_count=len(set(records)), client_addr=e.client, session_id=e.session,
            details=e.details, entry=data, leaf_hash=leaves[-1], expired_at=None))
    level, hashes = 0, leaves
    while len(hashes) >= 256:
        level += 8
        hashes = [merkle.root_of_leaves(hashes[i:i + 256]) for i in range(0, len(hashes) - 255, 256)]
        for idx, h in enumerate(hashes):
            bind.execute(sa.insert(nodes).values(level=level, idx=idx, hash=h))
    return len(leaves)


def _create_triggers() -> None:
    """DELETE is refused; UPDATE only while the retention gate is open, and only one that removes an
    entry's payload (its index and leaf hash stay). The triggers stop accidents and application bugs;
    deliberate changes by someone who controls the database are what the signed tree detects."""
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(
            "CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END")
        op.execute(
            "CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events "
            "WHEN NEW.seq IS NOT OLD.seq OR NEW.leaf_hash IS NOT OLD.leaf_hash OR NEW.entry IS NOT NULL "
            "OR COALESCE((SELECT open FROM audit_gate WHERE id = 1), 0) = 0 "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END")
        op.execute(
            "CREATE TRIGGER audit_record_refs_no_update BEFORE UPDATE ON audit_record_refs "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END")
        op.execute(
            "CREATE TRIGGER audit_record_refs_no_delete BEFORE DELETE ON audit_record_refs "
            "WHEN COALESCE((SELECT open FROM audit_gate WHERE id = 1), 0) = 0 "
            "BEGIN SELECT RAISE(ABORT, 'audit_events is append-only'); END")
    elif bind.dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION hogo_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'UPDATE' AND NEW.seq = OLD.seq AND NEW.leaf_hash = OLD.leaf_hash AND NEW.entry IS NULL "
            "AND COALESCE((SELECT open FROM audit_gate WHERE id = 1), false) THEN RETURN NEW; END IF; "
            "RAISE EXCEPTION 'audit_events is append-only'; END $$")
        op.execute(
            "CREATE FUNCTION hogo_audit_refs_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "IF TG_OP = 'DELETE' AND COALESCE((SELECT open FROM audit_gate WHERE id = 1), false) THEN "
            "RETURN OLD; END IF; RAISE EXCEPTION 'audit_events is append-only'; END $$")
        op.execute(
            "CREATE FUNCTION hogo_audit_no_truncate() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit_events is append-only'; END $$")
        op.execute("CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
                   "FOR EACH ROW EXECUTE FUNCTION hogo_audit_append_only()")
        op.execute("CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events "
                   "FOR EACH STATEMENT EXECUTE FUNCTION hogo_audit_no_truncate()")
        op.execute("CREATE TRIGGER audit_record_refs_guard BEFORE UPDATE OR DELETE ON audit_record_refs "
                   "FOR EACH ROW EXECUTE FUNCTION hogo_audit_refs_guard()")
        op.execute("CREATE TRIGGER audit_record_refs_no_truncate BEFORE TRUNCATE ON audit_record_refs "
                   "FOR EACH STATEMENT EXECUTE FUNCTION hogo_audit_no_truncate()")


def _drop_triggers() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for name in ("audit_events_no_delete", "audit_events_no_update", "audit_record_refs_no_update",
                     "audit_record_refs_no_delete"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_truncate ON audit_events")
        op.execute("DROP TRIGGER IF EXISTS audit_record_refs_guard ON audit_record_refs")
        op.execute("DROP TRIGGER IF EXISTS audit_record_refs_no_truncate ON audit_record_refs")
        op.execute("DROP FUNCTION IF EXISTS hogo_audit_append_only()")
        op.execute("DROP FUNCTION IF EXISTS hogo_audit_refs_guard()")
        op.execute("DROP FUNCTION IF EXISTS hogo_audit_no_truncate()")


def _drop_old_triggers() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS hogo_audit_append_only()")


def _create_old_triggers() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                       f"BEGIN SELECT RAISE(ABORT, '{APPEND_ONLY_MESSAGE}'); END")
    elif bind.dialect.name == "postgresql":
        op.execute("CREATE FUNCTION hogo_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
                   f"BEGIN RAISE EXCEPTION '{APPEND_ONLY_MESSAGE}'; END $$")
        op.execute("CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_events "
                   "FOR EACH STATEMENT EXECUTE FUNCTION hogo_audit_append_only()")


def downgrade() -> None:
    _drop_triggers()
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        for name in ('ix_audit_events_ts', 'ix_audit_events_subject_ts', 'ix_audit_events_file_ts',
                     'ix_audit_events_event_ts', 'ix_audit_events_client_event_ts', 'ix_audit_events_actor_ts'):
            batch_op.drop_index(name)
    op.rename_table('audit_events', 'audit_events_v1')
    _rename_pk('audit_events_v1')
    op.create_table('audit_events', *_old_columns(), sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events')))
    op.execute(sa.text(
        "INSERT INTO audit_events (id, ts, event, outcome, reason, actor_id, actor_name, subject_user_id, "
        "target, client_addr, session_id, details) SELECT seq + 1, ts, event, COALESCE(outcome, 'success'), "
        "reason, actor_id, actor_name, subject_user_id, target, client_addr, session_id, details "
        "FROM audit_events_v1 ORDER BY seq"))
    op.drop_table('audit_events_v1')
    op.drop_table('audit_gate')
    op.drop_table('audit_checkpoints')
    op.drop_table('audit_nodes')
    op.drop_table('audit_head')
    with op.batch_alter_table('audit_record_refs', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_record_refs_lookup')
    op.drop_table('audit_record_refs')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index('ix_audit_events_actor_ts', ['actor_id', 'ts'], unique=False)
        batch_op.create_index('ix_audit_events_client_event_ts', ['client_addr', 'event', 'ts'], unique=False)
        batch_op.create_index('ix_audit_events_subject_ts', ['subject_user_id', 'ts'], unique=False)
    _create_old_triggers()

"""authorization epoch: one row that triggers change whenever what authenticates a request or decides a
record access changes, so that processes may keep those lookups between requests (store/authz_cache.py)

The triggers are on the tables the record read's lookups read. Columns written on every sign-in or
every request (failed attempts, the last sign-in, last activity, a grant's last use) are left out:
they do not change a decision, and a change of them would empty every process's cache. A test checks
that every other column of these tables is watched, so a column added later is not forgotten.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""
import sqlalchemy as sa
from alembic import op

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

# Per table: the columns whose UPDATE changes the epoch (None: every column), and whether an INSERT does.
# A new session or API token needs no change (nothing cached can be about it); a new grant or role does.
WATCHED: dict[str, tuple[tuple[str, ...] | None, bool]] = {
    'departments': (None, True),
    'users': (('id', 'username', 'display_name', 'email', 'department_id', 'password_hash',
               'must_change_password', 'password_changed_at', 'valid_from', 'valid_until', 'disabled_at',
               'disabled_reason', 'mfa_enabled', 'mfa_secret', 'mfa_pending_secret', 'mfa_pending_at', 'is_demo',
               'created_at', 'created_by_id', 'updated_at'), True),
    'user_roles': (None, True),
    'auth_sessions': (('id', 'user_id', 'token_hash', 'kind', 'mfa_verified', 'created_at', 'expires_at',
                       'revoked_at', 'revoked_reason', 'client_addr', 'user_agent'), False),
    'api_tokens': (('id', 'user_id', 'name', 'token_hash', 'prefix', 'scopes', 'mfa_verified', 'created_at',
                    'expires_at', 'revoked_at'), False),
    'personal_data_files': (None, True),
    'grants': (('id', 'file_id', 'user_id', 'role', 'role_department_id', 'actions', 'fields', 'purposes',
                'segments', 'valid_from', 'valid_until', 'note', 'granted_by_id', 'granted_at', 'revoked_at',
                'revoked_by_id'), True),
}


def upgrade() -> None:
    op.create_table('authz_epoch',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('value', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_authz_epoch'))
    )
    op.execute("INSERT INTO authz_epoch (id, value) VALUES (1, 1)")
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for table, (columns, on_insert) in WATCHED.items():
            of = f" OF {', '.join(columns)}" if columns else ""
            events = [('update', f"UPDATE{of}"), ('delete', "DELETE")] + ([('insert', "INSERT")] if on_insert else [])
            for name, verb in events:
                op.execute(f"CREATE TRIGGER authz_{table}_{name} AFTER {verb} ON {table} BEGIN "  # noqa: S608
                           "UPDATE authz_epoch SET value = random() WHERE id = 1; END")
    elif dialect == 'postgresql':
        op.execute("CREATE FUNCTION hogo_authz_changed() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                   "UPDATE authz_epoch SET value = floor(random() * 9007199254740991)::bigint WHERE id = 1; "
                   "RETURN NULL; END $$")
        for table, (columns, on_insert) in WATCHED.items():
            of = f" OF {', '.join(columns)}" if columns else ""
            verbs = " OR ".join([f"UPDATE{of}", "DELETE", "TRUNCATE"] + (["INSERT"] if on_insert else []))
            op.execute(f"CREATE TRIGGER authz_{table} AFTER {verbs} ON {table} "
                       "FOR EACH STATEMENT EXECUTE FUNCTION hogo_authz_changed()")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'sqlite':
        for table, (_columns, on_insert) in WATCHED.items():
            for name in ('update', 'delete') + (('insert',) if on_insert else ()):
                op.execute(f"DROP TRIGGER IF EXISTS authz_{table}_{name}")
    elif dialect == 'postgresql':
        for table in WATCHED:
            op.execute(f"DROP TRIGGER IF EXISTS authz_{table} ON {table}")
        op.execute("DROP FUNCTION IF EXISTS hogo_authz_changed()")
    op.drop_table('authz_epoch')

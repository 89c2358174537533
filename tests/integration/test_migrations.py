"""Schema migrations on SQLite and PostgreSQL: models and migrations agree, downgrade works, and the
audit record is append-only in the database itself (MN-3b, ANON-12).

``make migration-check`` runs this file alone. On PostgreSQL each test gets its own schema (see
``database_url`` in conftest); without ``HOGO_TEST_PG_URL`` those cases skip locally and fail in CI.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.expression import Executable

from hogo.domain import merkle
from hogo.domain.auditlog import LogEntry, decode
from hogo.services import audit
from hogo.store import db
from hogo.store.models import Base

AUDIT = Base.metadata.tables["audit_events"]


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    eng = db.make_engine(database_url)
    try:
        yield eng
    finally:
        eng.dispose()


def _drift(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(ctx, Base.metadata))


def _downgrade(engine: Engine, target: str) -> None:
    cfg = db.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, target)


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_migrations_have_a_single_head() -> None:
    """One line of history: two heads would mean two migrations that never met (MN-3b: the schema
    that keeps the record is itself reproducible)."""
    script = ScriptDirectory.from_config(db.alembic_config("sqlite://"))
    assert len(script.get_heads()) == 1, script.get_heads()


def test_upgrade_on_an_empty_database_matches_the_models(engine: Engine) -> None:
    """``upgrade`` on an empty database yields exactly the schema the models describe; CI fails when
    models and migrations drift apart (MN-3b, ANON-12: the append-only audit table and its indexes
    are what the migrations create, not what the ORM guesses)."""
    assert db.current_revision(engine) is None
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    assert _tables(engine) == set(Base.metadata.tables)
    drift = _drift(engine)
    assert drift == [], "models and migrations differ; write a migration:\n" + "\n".join(map(repr, drift))


def test_downgrade_to_base_and_upgrade_again(engine: Engine) -> None:
    """Every migration can be undone and redone: downgrade to base leaves no table (nor the
    append-only trigger function on PostgreSQL), and a second upgrade gives the same schema."""
    db.upgrade(engine)
    _downgrade(engine, "base")
    assert db.current_revision(engine) is None
    assert _tables(engine) == set()
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            left = conn.scalar(text(
                "SELECT count(*) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE p.proname = 'hogo_audit_append_only' AND n.nspname = current_schema()"
            ))
        assert left == 0
    db.upgrade(engine)
    assert db.current_revision(engine) == db.head_revision()
    assert _drift(engine) == []
    _assert_append_only(engine)


def _insert_event(engine: Engine) -> int:
    """Appends through the log's own path (next index, encoding, leaf hash)."""
    entry = LogEntry(ts=dt.datetime(2026, 4, 1, 9, 0, tzinfo=dt.UTC), event="test:log:append_only",
                     outcome="success", reason="migration test", file="f", records=("r1",))
    with engine.begin() as conn:
        return audit.append(conn, [entry])


def _assert_append_only(engine: Engine) -> None:
    event_id = _insert_event(engine)
    refs = Base.metadata.tables["audit_record_refs"]
    statements: list[Executable] = [
        AUDIT.update().where(AUDIT.c.seq == event_id).values(reason="falsified"),
        AUDIT.update().where(AUDIT.c.seq == event_id).values(entry=None),  # the gate is closed
        AUDIT.delete().where(AUDIT.c.seq == event_id),
        AUDIT.delete(),
        refs.update().values(record_id="r2"),
        refs.delete(),
    ]
    if engine.dialect.name == "postgresql":
        statements += [text("TRUNCATE audit_events"), text("TRUNCATE audit_record_refs")]
    for stmt in statements:
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(stmt)
    with engine.connect() as conn:
        row = conn.execute(select(AUDIT.c.reason, AUDIT.c.entry).where(AUDIT.c.seq == event_id)).one()
    assert row.reason == "migration test" and row.entry is not None
    # Even with the retention gate open, only the removal of a payload gets through.
    gate = Base.metadata.tables["audit_gate"]
    for stmt in (AUDIT.update().where(AUDIT.c.seq == event_id).values(reason="falsified"),
                 AUDIT.update().where(AUDIT.c.seq == event_id).values(leaf_hash=b"x" * 32, entry=None),
                 AUDIT.delete().where(AUDIT.c.seq == event_id)):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as conn:
            conn.execute(gate.update().values(open=True))
            conn.execute(stmt)
    # Appending still works after the refusals.
    assert _insert_event(engine) == event_id + 1


def test_audit_events_refuse_update_and_delete(engine: Engine) -> None:
    """MN-3b (アクセス記録の改ざん防止) and ANON-12 (記録の改ざん・不正な削除の防止): the database
    itself refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL) on ``audit_events``, whatever the
    application does; a refused statement changes nothing and appending goes on."""
    db.upgrade(engine)
    _assert_append_only(engine)


def test_events_recorded_before_the_log_become_its_first_entries(engine: Engine) -> None:
    """Upgrading an instance from revision 0002 keeps its events: they become entries 0 … n-1, in
    their order, with leaf hashes and tree nodes the verifier accepts (SEC-107(3), MN-3b)."""
    cfg = db.alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0002")
    n = 300  # more than one 256-leaf tile
    with engine.begin() as conn:
        for i in range(n):
            conn.execute(text(
                "INSERT INTO audit_events (ts, event, outcome, actor_name, details) "
                "VALUES (:ts, 'data:record:read', 'success', 'clerk', :d)"),
                {"ts": dt.datetime(2026, 4, 1, 9, 0, i % 60), "d": json.dumps(
                    {"file": "payroll", "purpose": "payroll", "records": [f"r{i}"], "fields": ["name"]})})
    db.upgrade(engine)
    with engine.connect() as conn:
        rows = conn.execute(select(AUDIT.c.seq, AUDIT.c.entry, AUDIT.c.leaf_hash, AUDIT.c.file_code)
                            .order_by(AUDIT.c.seq)).all()
        node = conn.execute(text("SELECT hash FROM audit_nodes WHERE level = 8 AND idx = 0")).scalar_one()
        size = conn.execute(text("SELECT size FROM audit_head")).scalar_one()
    assert [r.seq for r in rows] == list(range(n)) and size == n
    seq, logged = decode(rows[7].entry)
    assert seq == 7 and logged.records == ("r7",) and logged.purpose == "payroll" and rows[7].file_code == "payroll"
    assert all(merkle.leaf_hash(r.entry) == r.leaf_hash for r in rows)
    assert node == merkle.root_of_leaves([r.leaf_hash for r in rows[:256]])
    assert _insert_event(engine) == n

"""Engine and session set-up, and running migrations, for SQLite and PostgreSQL alike."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# Kept connections, and how many more may be opened (then closed) under a burst: sized to the
# server's request threads (40), so steady load reuses connections instead of reconnecting.
POOL_SIZE = 40
POOL_OVERFLOW = 20


def make_engine(url: str, **kw: Any) -> Engine:
    # Statement parameters never reach logs or error messages: they can hold hashes and personal data.
    kw.setdefault("hide_parameters", True)
    if url.startswith("sqlite"):
        if url not in ("sqlite://", "sqlite:///:memory:"):
            # One connection per request thread kept open: a pool smaller than the server's thread
            # pool would open (and set up) a fresh connection for every request beyond it.
            kw.setdefault("pool_size", POOL_SIZE)
            kw.setdefault("max_overflow", POOL_OVERFLOW)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30}, **kw)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy, not pysqlite, issue BEGIN so transactions are real and serialised.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA cache_size=-32768")
            # Read the database file through a memory map: every commit (each request writes the log)
            # empties the other connections' page caches, and mapped pages come back without a copy.
            cur.execute("PRAGMA mmap_size=1073741824")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # Writers take the lock up front (no failed read→write upgrades under WAL); pure reads
            # (``unit_of_work(readonly=True)``) run concurrently on a snapshot.
            # Issued on the driver's connection: through SQLAlchemy's execution machinery the BEGIN
            # costs more than the queries of a typical request.
            raw = conn.connection.dbapi_connection
            raw.execute("BEGIN" if conn.get_execution_options().get("hogo_readonly") else "BEGIN IMMEDIATE")

        return engine
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    kw.setdefault("pool_size", POOL_SIZE)
    kw.setdefault("max_overflow", POOL_OVERFLOW)
    return create_engine(url, pool_pre_ping=True, **kw)


@contextlib.contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only transaction that sees one consistent state of the whole database: REPEATABLE READ
    on PostgreSQL (READ COMMITTED would give each statement a newer snapshot), a deferred BEGIN on
    SQLite (a WAL snapshot that blocks no writer)."""
    with engine.connect() as conn:
        if engine.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
        else:
            conn = conn.execution_options(hogo_readonly=True)
        with conn.begin():
            yield conn


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(bind=engine, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    cfg = alembic_config(str(engine.url.render_as_string(hide_password=False)))
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    return script.get_current_head()


class BackgroundCheckpointer:
    """SQLite: move WAL checkpoints off the request path.

    By default the connection whose commit crosses the WAL's size threshold copies the WAL into the
    database there and then, and that request waits. A server instead turns automatic checkpoints
    off on its connections and checkpoints from this thread (PASSIVE: it never blocks writers)."""

    def __init__(self, engine: Engine, *, interval_s: float = 0.5) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        @event.listens_for(self.engine, "connect")
        def _no_auto_checkpoint(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA wal_autocheckpoint=0")
            cur.close()

        self.engine.dispose()  # pooled connections made before keep their setting: start afresh
        self._thread = threading.Thread(target=self._run, name="hogo-wal-checkpoint", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self._checkpoint("PASSIVE")
            except Exception:  # noqa: S112 - a failed checkpoint is retried next time; data is safe in the WAL
                continue

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._checkpoint("TRUNCATE")

    def _checkpoint(self, mode: str) -> None:
        # On the driver's connection, outside any transaction: through SQLAlchemy the statement would
        # run inside the BEGIN IMMEDIATE every connection starts with, where SQLite does not checkpoint
        # at all, and the WAL would grow without end (every read then searching all of it).
        with self.engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            assert raw is not None
            raw.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()

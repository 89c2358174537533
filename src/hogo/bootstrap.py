"""Composition root: builds the one ``Hogo`` object every adapter (API, web, CLI, tests) uses."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, func, orm, select
from sqlalchemy.orm import Session, sessionmaker

from hogo.clock import Clock, SystemClock
from hogo.config import Settings
from hogo.crypto import Keyring, PasswordHasher, load_keyring
from hogo.crypto.envelope import FileKeys
from hogo.crypto.factory import build_key_provider
from hogo.crypto.keystore import KeyStore, keystore_path
from hogo.crypto.providers import KeyProvider
from hogo.domain.auditlog import LogEntry
from hogo.domain.passwords import PasswordPolicy, load_common_passwords
from hogo.errors import ConfigurationError
from hogo.services import audit
from hogo.store import db
from hogo.store.authz_cache import AuthzCache
from hogo.store.models import User

GROUP_MAX = 1024  # callers in one group commit: bounds a transaction under sustained load
GATHER_S = 0.0005  # how long a group's leader waits for the crowd of the last group to queue again


class _Grouped:
    """One caller of ``write_together`` (or ``write_together_async``): its work, and how it is woken.

    A thread sleeps on ``wake``, a lock held until it is woken — either because its group has
    committed or because it is to lead the next group. An asynchronous caller has no lock: its
    ``future`` is settled on its event loop when its group has committed, and it never leads (the
    log writer thread leads in its place)."""

    __slots__ = ("entries", "error", "future", "lead", "loop", "wake", "work")

    def __init__(self, work: Callable[[Session], None] | None, entries: Sequence[LogEntry], *,
                 loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.work = work
        self.entries = entries
        self.loop = loop
        self.future: asyncio.Future[None] | None = None
        if loop is None:
            self.wake: threading.Lock | None = threading.Lock()
            self.wake.acquire()
        else:
            self.wake = None
            self.future = loop.create_future()
        self.lead = False
        self.error: BaseException | None = None


def _settle(members: list[_Grouped]) -> None:
    """On an event loop: tell its waiting callers how their group ended."""
    for g in members:
        f = g.future
        if f is not None and not f.done():
            if g.error is not None:
                f.set_exception(g.error)
            else:
                f.set_result(None)


@dataclasses.dataclass
class Hogo:
    settings: Settings
    engine: Engine
    sessionmaker: sessionmaker[Session]
    clock: Clock
    keyring: Keyring
    hasher: PasswordHasher
    common_passwords: frozenset[str]
    key_provider: KeyProvider
    # Sessions whose connections begin read-only transactions (SQLite: a deferred BEGIN, no write lock).
    read_sessionmaker: orm.sessionmaker[Session] | None = None
    # Unwrapped file keys, by file id: unwrapping (in an HSM, say) is too slow for every request.
    file_keys: dict[int, FileKeys] = dataclasses.field(default_factory=dict)
    # Parsed file specs by (file id, version): a version's spec never changes.
    spec_cache: dict[tuple[int, int], Any] = dataclasses.field(default_factory=dict)
    # Authentication and grant lookups, reused while the database's authorization epoch is unchanged.
    authz_cache: AuthzCache = dataclasses.field(default_factory=AuthzCache)
    sqlite_write_lock: threading.RLock = dataclasses.field(default_factory=threading.RLock)
    # When this process last noted each grant's use (the database is written at most hourly per grant).
    grant_touches: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)
    # Nodes of the log's Merkle tree this process has computed (complete subtrees never change).
    tree_cache: dict[tuple[int, int], bytes] = dataclasses.field(default_factory=dict)
    # Per-process state of services (e.g. when the log's anchoring was last checked).
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    _group_mutex: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    _group_leading: bool = False
    _group_last: int = 1
    _group_want: int = 0
    _group_signal: threading.Lock | None = None
    _group_queue: list[_Grouped] = dataclasses.field(default_factory=list)
    # The thread that leads groups whose first caller is asynchronous (``write_together_async``).
    _writer: threading.Thread | None = None
    _writer_go: threading.Semaphore = dataclasses.field(default_factory=lambda: threading.Semaphore(0))
    _writer_mutex: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    _writer_stop: bool = False
    # Read connections kept by threads that ask for one (``reading(kept=True)``), closed with the instance.
    _kept: threading.local = dataclasses.field(default_factory=threading.local)
    _kept_all: list[Connection] = dataclasses.field(default_factory=list)

    @property
    def keystore(self) -> KeyStore:
        """The wrapped file keys, kept beside the KEK and never in the database (crypto/keystore.py)."""
        store = self.extras.get("keystore")
        if store is None:
            store = self.extras["keystore"] = KeyStore(keystore_path(self.settings.keys_dir))
        return store

    @property
    def password_policy(self) -> PasswordPolicy:
        return PasswordPolicy(
            min_length=self.settings.password_min_length, max_length=self.settings.password_max_length
        )

    @contextmanager
    def reading(self, *, kept: bool = False) -> Iterator[Connection]:
        """A read-only transaction on a bare connection, for hot read paths that execute prebuilt
        Core statements (no ORM session to set up). On SQLite a snapshot that takes no write lock.

        ``kept``: for the guard's reads from the authorization cache (store/authz_cache.py), made by a
        small, fixed set of threads. On SQLite, on a connection the thread keeps between calls (taking
        one from the pool and setting it up costs more than the reads of a cached access): each of those
        threads holds a pooled connection for good. On PostgreSQL, one REPEATABLE READ snapshot for
        the whole transaction: the cache labels what it loads with the epoch read first, so all of it
        must come from the same state of the database (READ COMMITTED gives each statement its own)."""
        if kept and self.settings.is_sqlite:
            conn = getattr(self._kept, "conn", None)
            if conn is None or conn.closed or conn.invalidated:
                conn = self.engine.connect().execution_options(hogo_readonly=True)
                self._kept.conn = conn
                with self._writer_mutex:
                    self._kept_all.append(conn)
            with conn.begin():
                yield conn
            return
        with self.engine.connect() as conn:
            if self.settings.is_sqlite:
                conn = conn.execution_options(hogo_readonly=True)
            elif kept:
                conn = conn.execution_options(isolation_level="REPEATABLE READ", postgresql_readonly=True)
            with conn.begin():
                yield conn

    @contextmanager
    def unit_of_work(self, *, readonly: bool = False) -> Iterator[Session]:
        """One transaction: commits on success, rolls back on any error. The data change and its
        audit event are written together or not at all (fail closed). ``readonly`` transactions
        must not write; on SQLite they do not take the write lock."""
        # SQLite has one writer at a time. Writers of this process queue on a lock here rather than
        # in SQLite's busy handler, which polls with sleeps of up to 100 ms and makes tail latency
        # explode under concurrent requests; other processes still wait through busy_timeout.
        lock = self.sqlite_write_lock if (self.settings.is_sqlite and not readonly) else None
        if lock is not None:
            lock.acquire()
        session = (self.read_sessionmaker or self.sessionmaker)() if readonly else self.sessionmaker()
        try:
            with session.begin():
                yield session
        finally:
            session.close()
            if lock is not None:
                lock.release()

    def write_together(self, work: Callable[[Session], None] | None = None, *,
                       entries: Sequence[LogEntry] = ()) -> None:
        """Run ``work`` and append ``entries`` to the log in a write transaction that has committed
        (durably) when this returns.

        Callers arriving while another group commits share the next transaction: one commit, one
        fsync, for all of them (group commit). If it fails, it fails for every caller of the group
        (closed): nobody is told their access was recorded unless it was. Each waiting caller sleeps
        on its own lock and is woken once: when its group has committed, or — the first of those who
        queued meanwhile — to lead the next group. A group with nothing but entries (the record-read
        path) is written on a bare connection, without an ORM session."""
        me = _Grouped(work, entries)
        if self._enqueue(me):
            assert me.wake is not None
            me.wake.acquire()
            if not me.lead:
                if me.error is not None:
                    raise me.error
                return
        self._lead(me)
        if me.error is not None:
            raise me.error

    def write_together_async(self, work: Callable[[Session], None] | None = None, *,
                             entries: Sequence[LogEntry] = ()) -> asyncio.Future[None]:
        """``write_together`` for a caller on an event loop: the returned future completes when the
        group holding ``work`` and ``entries`` has committed durably, or fails with its error. The
        caller's thread is never blocked: the groups are led by the log writer thread, and the
        callers of a group are settled with one call into their loop. Must be called on the loop."""
        me = _Grouped(work, entries, loop=asyncio.get_running_loop())
        if not self._enqueue(me):
            self._hand_to_writer()
        assert me.future is not None
        return me.future

    def _enqueue(self, me: _Grouped) -> bool:
        """Queue a caller; True when a group is being led (the caller waits for it), False when the
        caller must see that the next group gets a leader."""
        with self._group_mutex:
            self._group_queue.append(me)
            follow = self._group_leading
            self._group_leading = True
            if self._group_signal is not None and len(self._group_queue) >= self._group_want:
                self._group_signal.release()  # the leader's gathering is complete
                self._group_signal = None
        return follow

    def _lead(self, me: _Grouped | None) -> None:
        """Gather, take and write one group, then wake its callers and hand the lead on."""
        self._gather()
        with self._group_mutex:
            group, self._group_queue = self._group_queue[:GROUP_MAX], self._group_queue[GROUP_MAX:]
            self._group_last = len(group)
        try:
            self._write_group(group)
        except BaseException as exc:
            for g in group:
                g.error = exc
        finally:
            with self._group_mutex:
                nxt = self._group_queue[0] if self._group_queue else None
                self._group_leading = nxt is not None
            if nxt is not None:
                if nxt.wake is not None:
                    nxt.lead = True
                    nxt.wake.release()
                else:
                    self._hand_to_writer()
            by_loop: dict[asyncio.AbstractEventLoop, list[_Grouped]] = {}
            for g in group:
                if g is me:
                    continue
                if g.wake is not None:
                    g.wake.release()
                else:
                    assert g.loop is not None
                    by_loop.setdefault(g.loop, []).append(g)
            for loop, members in by_loop.items():
                with contextlib.suppress(RuntimeError):  # a loop closed meanwhile has nobody to tell
                    loop.call_soon_threadsafe(_settle, members)

    def _hand_to_writer(self) -> None:
        """Let the log writer thread lead the next group (started on first use)."""
        with self._writer_mutex:
            if self._writer is None:
                self._writer = threading.Thread(target=self._writer_run, name="hogo-log-writer", daemon=True)
                self._writer.start()
        self._writer_go.release()

    def _writer_run(self) -> None:
        while True:
            self._writer_go.acquire()
            if self._writer_stop:
                return
            self._lead(None)

    def _gather(self) -> None:
        """Before taking the queue, wait (at most ``GATHER_S``) until as many callers are queued as
        the last group had. Those woken by the last commit queue again within microseconds; without
        this the groups alternate between two halves of the crowd, each paying its own commit."""
        with self._group_mutex:
            want = self._group_last
            if len(self._group_queue) >= want:
                return
            signal = threading.Lock()
            signal.acquire()
            self._group_signal, self._group_want = signal, want
        signal.acquire(timeout=GATHER_S)
        with self._group_mutex:
            self._group_signal = None

    def _write_group(self, group: list[_Grouped]) -> None:
        entries = [e for g in group for e in g.entries]
        if any(g.work is not None for g in group):
            with self.unit_of_work() as db:
                for g in group:
                    if g.work is not None:
                        g.work(db)
                audit.add(db, entries)
            return
        lock = self.sqlite_write_lock if self.settings.is_sqlite else None
        if lock is not None:
            lock.acquire()
        try:
            with self.engine.begin() as conn:
                audit.append(conn, entries)
        finally:
            if lock is not None:
                lock.release()

    def close(self) -> None:
        if self._writer is not None:
            self._writer_stop = True
            self._writer_go.release()
            self._writer.join(timeout=5)
        with self._writer_mutex:
            kept, self._kept_all = self._kept_all, []
        for conn in kept:
            with contextlib.suppress(Exception):  # a connection already broken has nothing to release
                conn.close()
        self.engine.dispose()
        close = getattr(self.key_provider, "close", None)
        if callable(close):
            close()


def build(settings: Settings, *, clock: Clock | None = None, keyring: Keyring | None = None,
          passphrase: str | None = None) -> Hogo:
    """``passphrase`` opens a key file sealed by one (``hogo init --passphrase-file``)."""
    engine = db.make_engine(settings.database_url)
    ring = keyring or load_keyring(settings.keys_dir, allow_published=settings.demo, passphrase=passphrase)
    a = settings.argon2
    return Hogo(
        settings=settings,
        engine=engine,
        sessionmaker=_sessionmaker(engine),
        read_sessionmaker=_sessionmaker(engine.execution_options(hogo_readonly=True)),
        clock=clock or SystemClock(),
        keyring=ring,
        hasher=PasswordHasher(time_cost=a.time_cost, memory_cost_kib=a.memory_cost_kib, parallelism=a.parallelism),
        common_passwords=load_common_passwords(),
        key_provider=build_key_provider(settings, ring),
    )


def _sessionmaker(engine: Engine) -> sessionmaker[Session]:
    factory = db.make_sessionmaker(engine)
    audit.install(factory)  # every commit appends the entries recorded in its transaction
    return factory


def check_ready_to_serve(hogo: Hogo) -> None:
    """Refuse to serve an instance that is not initialised, not migrated, or holds default secrets."""
    head = db.head_revision()
    current = db.current_revision(hogo.engine)
    if current is None:
        raise ConfigurationError("the database is not initialised: run 'hogo init'", code="not_initialised")
    if current != head:
        raise ConfigurationError(
            f"the database schema is at {current}, the code expects {head}: run 'hogo migrate'",
            code="schema_outdated",
        )
    if hogo.settings.demo:
        return
    with hogo.unit_of_work() as s:
        demo_accounts = s.scalar(select(func.count()).select_from(User).where(User.is_demo.is_(True)))
    if demo_accounts:
        raise ConfigurationError(
            "this instance holds demo accounts with published passwords but is not in demo mode; "
            "refusing to serve",
            code="default_secret",
        )

"""Composition root: builds the one ``Hogo`` object every adapter (API, web, CLI, tests) uses."""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from hogo.clock import Clock, SystemClock
from hogo.config import Settings
from hogo.crypto import Keyring, PasswordHasher, load_keyring
from hogo.crypto.envelope import FileKeys
from hogo.crypto.factory import build_key_provider
from hogo.crypto.providers import KeyProvider
from hogo.domain.passwords import PasswordPolicy, load_common_passwords
from hogo.errors import ConfigurationError
from hogo.services import audit
from hogo.store import db
from hogo.store.models import User


@dataclasses.dataclass
class _Grouped:
    work: Callable[[Session], None]
    done: bool = False
    error: BaseException | None = None


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
    # Unwrapped file keys, by file id: unwrapping (in an HSM, say) is too slow for every request.
    file_keys: dict[int, FileKeys] = dataclasses.field(default_factory=dict)
    # Parsed file specs by (file id, version): a version's spec never changes.
    spec_cache: dict[tuple[int, int], Any] = dataclasses.field(default_factory=dict)
    sqlite_write_lock: threading.RLock = dataclasses.field(default_factory=threading.RLock)
    # When this process last noted each grant's use (the database is written at most hourly per grant).
    grant_touches: dict[str, dt.datetime] = dataclasses.field(default_factory=dict)
    # Nodes of the log's Merkle tree this process has computed (complete subtrees never change).
    tree_cache: dict[tuple[int, int], bytes] = dataclasses.field(default_factory=dict)
    # Per-process state of services (e.g. when the log's anchoring was last checked).
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    _group_cond: threading.Condition = dataclasses.field(default_factory=threading.Condition)
    _group_leading: bool = False
    _group_queue: list[_Grouped] = dataclasses.field(default_factory=list)

    @property
    def password_policy(self) -> PasswordPolicy:
        return PasswordPolicy(
            min_length=self.settings.password_min_length, max_length=self.settings.password_max_length
        )

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
        session = self.sessionmaker()
        try:
            with session.begin():
                if readonly:
                    session.connection(execution_options={"hogo_readonly": True})
                yield session
        finally:
            session.close()
            if lock is not None:
                lock.release()

    def write_together(self, work: Callable[[Session], None]) -> None:
        """Run ``work`` in a write transaction that has committed (durably) when this returns.

        Callers arriving while another group commits share the next transaction: one commit, one
        fsync, for all of them (group commit). If it fails, it fails for every caller of the group
        (closed): nobody is told their access was recorded unless it was. Waiting callers sleep on
        one condition: when a group is done, the next leader takes everyone who queued meanwhile."""
        item = _Grouped(work)
        cond = self._group_cond
        with cond:
            self._group_queue.append(item)
            while not item.done and self._group_leading:
                cond.wait()
            if item.done:
                group: list[_Grouped] = []
            else:
                self._group_leading = True
                group, self._group_queue = self._group_queue, []
        if group:
            try:
                with self.unit_of_work() as db:
                    for g in group:
                        g.work(db)
            except BaseException as exc:
                for g in group:
                    g.error = exc
            finally:
                with cond:
                    for g in group:
                        g.done = True
                    self._group_leading = False
                    cond.notify_all()
        if item.error is not None:
            raise item.error

    def close(self) -> None:
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

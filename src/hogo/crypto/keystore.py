"""The key store: the wrapped data keys and blind-index keys of personal-data files (and the keys of
temporary working copies), kept apart from the data.

Why apart (ANON-18, SEC-50, MN-5d): a database backup carries every ciphertext. If the wrapped keys
travelled with it, the KEK (key file or HSM) would still unwrap them after an erasure, and the backup
would give back what was erased. So the wrapped keys live beside the KEK, in an SQLite file of the
instance's keys directory (``keys/keystore.db``, mode 0600), never in the database: destroying a key
version here makes every ciphertext under it — in the database and in every earlier copy of it —
unreadable for good (crypto-shredding).

Destroyed rows are overwritten in the file (``PRAGMA secure_delete``) and the rollback journal is
truncated, so the bytes of a destroyed wrapped key do not linger in the file's free pages. (What a
file system or an SSD keeps of overwritten blocks is outside what software can promise; the KEK
wraps every key, so a stray block alone is not a key.)

The key store is local to one instance: with PostgreSQL and several servers, each server would hold
its own; hogo supports one server process group per key store (see the README).
Backups of the database must never include this file (the database alone is not decryptable).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from hogo.crypto.envelope import WrappedKey

KEYSTORE_FILE_NAME = "keystore.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS wrapped_keys (
    file_id INTEGER NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('data', 'index')),
    version INTEGER NOT NULL,
    algorithm TEXT NOT NULL,
    provider TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (file_id, purpose, version)
);
CREATE TABLE IF NOT EXISTS destroyed_keys (
    file_id INTEGER NOT NULL,
    version INTEGER NOT NULL,
    destroyed_at TEXT NOT NULL,
    PRIMARY KEY (file_id, version)
);
CREATE TABLE IF NOT EXISTS copy_keys (
    copy_id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    kek_id TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    created_at TEXT NOT NULL
)
"""


class KeyStore:
    """put, get the versions of a file, destroy. Thread-safe (one connection per call)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._init_lock = threading.Lock()
        self._ready = False

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        if not self._ready:
            self._create()
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA journal_mode=TRUNCATE")
            conn.execute("PRAGMA synchronous=FULL")
            yield conn
        finally:
            conn.close()

    def _create(self) -> None:
        with self._init_lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():
                fd = os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600)
                os.close(fd)
            os.chmod(self.path, 0o600)
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            try:
                conn.executescript(_SCHEMA)
            finally:
                conn.close()
            self._ready = True

    def create(self) -> None:
        """Make the file (mode 0600) if it does not exist: at ``hogo init``."""
        self._create()

    def put(self, file_id: int, keys: Iterable[WrappedKey], *, algorithm: str, now: dt.datetime,
            replace: bool = False) -> None:
        """Store wrapped keys, all or none. A (file, purpose, version) already stored is refused unless
        ``replace`` (moving keys in from the database, idempotently: the same key again); then a version
        destroyed before is skipped — a database restored from before the key store cannot bring back a
        destroyed key (the versions destroyed are remembered, never their keys)."""
        rows = [(file_id, k.purpose, k.version, algorithm, k.provider, k.kek_id, k.wrapped, now.isoformat())
                for k in keys]
        verb = "INSERT OR IGNORE" if replace else "INSERT"
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if replace:
                    gone = {v for (v,) in conn.execute("SELECT version FROM destroyed_keys WHERE file_id = ?",
                                                       (file_id,))}
                    rows = [r for r in rows if r[2] not in gone]
                conn.executemany(f"{verb} INTO wrapped_keys VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    def get(self, file_id: int) -> list[WrappedKey]:
        with self._connect() as conn:
            rows = conn.execute("SELECT version, purpose, provider, kek_id, wrapped FROM wrapped_keys "
                                "WHERE file_id = ? ORDER BY purpose, version", (file_id,)).fetchall()
        return [WrappedKey(v, p, prov, kek, bytes(w)) for v, p, prov, kek, w in rows]

    def versions(self, file_id: int) -> set[tuple[str, int]]:
        """(purpose, version) of every key the file still has."""
        with self._connect() as conn:
            return {(p, v) for p, v in conn.execute(
                "SELECT purpose, version FROM wrapped_keys WHERE file_id = ?", (file_id,))}

    def max_version(self, file_id: int) -> int:
        with self._connect() as conn:
            (v,) = conn.execute("SELECT coalesce(max(version), 0) FROM wrapped_keys WHERE file_id = ?",
                                (file_id,)).fetchone()
        return int(v)

    def destroy(self, file_id: int, versions: Iterable[int] | None = None, *, remember: bool = True) -> list[int]:
        """Destroy key versions of a file (data and index keys of each), or all its keys (``None``).
        Returns the versions destroyed. The deleted rows are overwritten in the file (secure_delete);
        the versions are remembered as destroyed (``remember``; not for the leftovers of a file whose
        creation was rolled back, see ``services.files.create_file``)."""
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                if versions is None:
                    gone = [v for (v,) in conn.execute(
                        "SELECT DISTINCT version FROM wrapped_keys WHERE file_id = ?", (file_id,))]
                    conn.execute("DELETE FROM wrapped_keys WHERE file_id = ?", (file_id,))
                    remembered = gone
                else:
                    wanted = sorted(set(versions))
                    gone = [v for v in wanted if conn.execute(
                        "SELECT 1 FROM wrapped_keys WHERE file_id = ? AND version = ?", (file_id, v)).fetchone()]
                    conn.executemany("DELETE FROM wrapped_keys WHERE file_id = ? AND version = ?",
                                     [(file_id, v) for v in wanted])
                    remembered = wanted
                if remember:
                    conn.executemany("INSERT OR IGNORE INTO destroyed_keys VALUES (?, ?, ?)",
                                     [(file_id, v, dt.datetime.now(dt.UTC).isoformat()) for v in remembered])
                else:
                    conn.execute("DELETE FROM destroyed_keys WHERE file_id = ?", (file_id,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return sorted(gone)

    # Keys of temporary working copies (ANON-17): kept here for the same reason as file keys — disposing
    # of a copy destroys its key, and no earlier database backup then opens it.

    def put_copy_key(self, copy_id: str, *, provider: str, kek_id: str, wrapped: bytes, now: dt.datetime) -> None:
        with self._connect() as conn:
            conn.execute("INSERT INTO copy_keys VALUES (?, ?, ?, ?, ?)",
                         (copy_id, provider, kek_id, wrapped, now.isoformat()))

    def get_copy_key(self, copy_id: str) -> bytes | None:
        with self._connect() as conn:
            row = conn.execute("SELECT wrapped FROM copy_keys WHERE copy_id = ?", (copy_id,)).fetchone()
        return None if row is None else bytes(row[0])

    def destroy_copy_key(self, copy_id: str) -> bool:
        """Destroy a working copy's key (the row overwritten in the file); whether there was one."""
        with self._connect() as conn:
            return conn.execute("DELETE FROM copy_keys WHERE copy_id = ?", (copy_id,)).rowcount > 0

    def raw_bytes(self) -> bytes:
        """The file as it is on disk (tests look for a destroyed key's bytes in it)."""
        return self.path.read_bytes() if self.path.exists() else b""


def keystore_path(keys_dir: Path) -> Path:
    return keys_dir / KEYSTORE_FILE_NAME

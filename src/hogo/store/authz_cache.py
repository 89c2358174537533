"""Lookups that authenticate a request and decide a record access, kept between requests while the
database says nothing they read has changed.

The ``authz_epoch`` row (``models.AuthzEpoch``) takes a new random value, by database triggers, in
every transaction that changes a table those lookups read (migration 0010 names the tables and the
few columns left out). A request reads the value in its own transaction, first; lookups made under
the same value answer what the database would answer in that transaction, so they are reused, and a
different value (newer, or an older snapshot, or a restored backup) empties the cache. The triggers
fire whoever writes: this process, another server on the same database, or a command-line tool.

Only reads that cannot write use it (``Snapshot`` is given to them); whatever must write — ending an
expired session, noting activity, recording a refusal — is done on fresh lookups.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sqlalchemy import Connection

T = TypeVar("T")

# Beyond this many entries the cache starts again (sessions and tokens are keys: unbounded otherwise).
MAX_ENTRIES = 20_000

_EPOCH_SQL = "SELECT value FROM authz_epoch WHERE id = 1"


def read_epoch(conn: Connection) -> int | None:
    """The epoch as of ``conn``'s transaction, on the driver's cursor (this is on every cached read)."""
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(_EPOCH_SQL)
        row = cursor.fetchone()
    finally:
        cursor.close()
    return None if row is None else int(row[0])


class Snapshot:
    """The cache as of one epoch, for one request: ``get`` answers from it or loads and keeps."""

    __slots__ = ("_entries",)

    def __init__(self, entries: dict[Hashable, Any]) -> None:
        self._entries = entries

    def get(self, key: Hashable, load: Callable[[], T]) -> T:
        found = self._entries.get(key, _MISSING)
        if found is _MISSING:
            found = load()  # an error (e.g. not found) is raised, not kept
            if len(self._entries) < MAX_ENTRIES:
                self._entries[key] = found
        return found  # type: ignore[no-any-return]


_MISSING = object()


class AuthzCache:
    """One per process (``Hogo.authz_cache``), shared by the event loop and worker threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._epoch: int | None = None
        self._entries: dict[Hashable, Any] = {}

    def snapshot(self, conn: Connection) -> Snapshot:
        """The cache for a request whose transaction is ``conn`` (its epoch read there, first). Without
        an epoch row (deleted?) nothing is reused: the snapshot keeps what it loads for itself only."""
        epoch = read_epoch(conn)
        if epoch is None:
            return Snapshot({})
        with self._lock:
            if epoch != self._epoch or len(self._entries) >= MAX_ENTRIES:
                self._epoch, self._entries = epoch, {}
            return Snapshot(self._entries)

    def forget(self, key: Hashable) -> None:
        """Drop one entry, e.g. a session whose activity was just noted (that column is not watched)."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        with self._lock:
            self._epoch, self._entries = None, {}

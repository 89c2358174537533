"""How running servers mark their data directory: each server holds a shared lock on
``<data dir>/hogo.serve.lock`` for as long as it runs (several servers may share one instance);
a restore takes the lock exclusively for as long as it runs.

The lock, not the file, is the mark: a server that crashed leaves the file but not the lock, so a
stale file never blocks a restore. A restore refuses while any server holds the lock, and a server
refuses to start while a restore holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

from hogo.errors import ConfigurationError, Conflict

LOCK_FILE = "hogo.serve.lock"


def _open(data_dir: Path) -> int:
    data_dir.mkdir(parents=True, exist_ok=True)
    return os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)


@contextlib.contextmanager
def _held(data_dir: Path, mode: int, refusal: Callable[[], Exception]) -> Iterator[None]:
    """Hold the data directory's lock in ``mode`` (without waiting: ``refusal()`` when it is taken)."""
    fd = _open(data_dir)
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            raise refusal() from None
        yield
    finally:
        os.close(fd)  # releases the lock


def serving(data_dir: Path) -> contextlib.AbstractContextManager[None]:
    """Hold the data directory's lock (shared) while serving; ConfigurationError while a restore runs."""
    return _held(data_dir, fcntl.LOCK_SH, lambda: ConfigurationError(
        f"a restore is running on {data_dir}: start the server when it is done", code="restore_running"))


def served_lifespan(inner: Callable[[Any], Any], data_dir: Path) -> Callable[[Any], Any]:
    """An ASGI lifespan that holds the server lock around ``inner`` (the application's own)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        with serving(data_dir):
            async with inner(app):
                yield

    return lifespan


def running_server(data_dir: Path) -> bool:
    """Whether a server holds ``data_dir`` now."""
    try:
        fd = os.open(data_dir / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        return False
    finally:
        os.close(fd)


def stopped(data_dir: Path, what: str) -> contextlib.AbstractContextManager[None]:
    """Hold the data directory exclusively: Conflict if a server runs on it; no server starts meanwhile."""
    return _held(data_dir, fcntl.LOCK_EX, lambda: Conflict(
        f"a hogo server is running on {data_dir}: stop it before {what}", code="server_running"))

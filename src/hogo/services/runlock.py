"""How a running server marks its data directory: ``hogo serve`` holds an exclusive lock on
``<data dir>/hogo.serve.lock`` (with its process ID in it) for as long as it runs.

The lock, not the file, is the mark: a server that crashed leaves the file but not the lock, so a
stale file never blocks a restore. Commands that must not run beside a server (``hogo backup
restore``) ask ``running_server``; a second server on the same data directory is refused.
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


@contextlib.contextmanager
def serving(data_dir: Path) -> Iterator[None]:
    """Hold the data directory's server lock while serving (ConfigurationError if another server has it)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigurationError(
                f"another hogo server is running on {data_dir} (process {_pid(fd) or 'unknown'})",
                code="already_serving") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def served_lifespan(inner: Callable[[Any], Any], data_dir: Path) -> Callable[[Any], Any]:
    """An ASGI lifespan that holds the server lock around ``inner`` (the application's own)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        with serving(data_dir):
            async with inner(app):
                yield

    return lifespan


def running_server(data_dir: Path) -> int | None:
    """The process ID of a server holding ``data_dir`` (0 if its ID is unreadable), else None."""
    path = data_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _pid(fd) or 0
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def require_stopped(data_dir: Path, what: str) -> None:
    pid = running_server(data_dir)
    if pid is not None:
        raise Conflict(f"a hogo server is running on {data_dir} (process {pid or 'unknown'}): stop it before {what}",
                       code="server_running")


def _pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii").strip()
        return int(text) if text else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None

"""An import's rows validated and sealed in a worker process (issue 3), so a bulk import uses a second
CPU: the server's process parses the CSV, plans the key versions (buckets) and writes, while the worker
normalises each row (``domain.files.cells_normaliser``, the same validator as the serial path) and
encrypts and indexes the good ones (``crypto.envelope.FileKeys``, the same sealing).

The worker is a fresh interpreter (``python -m hogo.services.import_sealer``, started with fork+exec
through ``subprocess``: nothing of the server's threads or state is inherited). It talks to the server
over its standard input and output only: length-prefixed pickles, in memory. The data keys it needs
reach it only that way (never a file, an argument, the environment or a log); it keeps nothing when it
exits. Its standard error goes nowhere, and it reports a failure by the exception's type name alone, so
no value of a row can reach a log through it (MN-6a). Workers belong to one import (``import_workers`` of
them, one by default) and are torn down when it ends, however it ends.

Chunks are sealed optimistically: the server plans key versions for every row it sends, before the
worker has said which rows are good; a row refused later leaves its slot of the bucket unused (a
bucket may hold fewer records than its size, never more).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import os
import pickle
import queue
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from typing import IO, Any

from hogo.crypto.envelope import FileKeys
from hogo.domain.files import FileSpec, cells_normaliser
from hogo.domain.record_versions import hasher
from hogo.domain.retention import dispose_after

_LEN = struct.Struct(">Q")
PIPE_BYTES = 1 << 20  # Linux's default most for an unprivileged process (/proc/sys/fs/pipe-max-size)

RawKeys = tuple[int, dict[int, bytes], dict[int, bytes], int]  # file id, data keys, index keys, current
# A good row: position, segment, blob, key version, fields with values, due date, version hash (or None)
Good = tuple[int, str | None, bytes, int, tuple[str, ...], dt.date | None, str | None]


class SealerFailed(RuntimeError):
    """The worker stopped or failed; the import stops (what was committed stays whole batches)."""


def _send(fh: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    fh.write(_LEN.pack(len(data)))
    fh.write(data)
    fh.flush()


def _recv(fh: IO[bytes]) -> Any:
    head = fh.read(_LEN.size)
    if len(head) < _LEN.size:
        raise EOFError
    (n,) = _LEN.unpack(head)
    data = fh.read(n)
    if len(data) < n:
        raise EOFError
    return pickle.loads(data)  # noqa: S301 - our own child or parent, over a private pipe


# ------------------------------------------------------------------------------------ the worker


def seal_chunk(keys: FileKeys, spec: FileSpec, check: Any, rows: Sequence[tuple[str, Sequence[str]]],
               plan: Sequence[tuple[int, int]] | None, now: dt.datetime,
               version_hash: Callable[[str, int, str | None, bytes], str] | None = None) -> tuple[Any, Any, Any]:
    """Validate and seal rows ``(record ID, cells)``; row ``i`` goes under the version of slot ``i`` of
    ``plan`` (``None``: all under the current version). Returns ``(problems, good, index)``: the bad rows
    ``[(position, [(field, reason)…])]``, the good ones ``[(position, segment, blob, version, fields,
    dispose, hash)]`` (``hash``: the stored version's, ``domain.record_versions``, for an integrity-2
    file; else ``None``) and their blind-index entries ``[(field, digest, position)]`` in index order."""
    slots: list[int] = []
    for version, count in plan or [(keys.current_version, len(rows))]:
        slots += [version] * count
    problems: list[tuple[int, list[tuple[str, str]]]] = []
    runs: dict[int, list[tuple[int, str, dict[str, str]]]] = {}
    for pos, (rid, cells) in enumerate(rows):
        clean, bad = check(cells)
        if bad:
            problems.append((pos, bad))
            continue
        runs.setdefault(slots[pos], []).append((pos, rid, clean))
    seg_field = spec.segment_field
    indexed = [f.name for f in spec.fields if f.indexed]
    blind = keys.blind_index
    one_date = dispose_after(spec, {}, now) if spec.retention_from is None else None
    good: list[Good] = []
    index: list[tuple[str, bytes, int]] = []
    for version, part in runs.items():
        _, blobs = keys.seal_records([(rid, clean) for _, rid, clean in part], version)
        for (pos, rid, clean), blob in zip(part, blobs, strict=True):
            segment = clean.get(seg_field) if seg_field else None
            good.append((pos, segment, blob, version, tuple(clean),
                         one_date if spec.retention_from is None else dispose_after(spec, clean, now),
                         version_hash(rid, 1, segment, blob) if version_hash is not None else None))
        index += [(name, blind(name, clean[name], version), pos) for name in indexed
                  for pos, _, clean in part if name in clean]
    good.sort()
    index.sort()
    return problems, good, index


def _keys(raw: RawKeys) -> FileKeys:
    file_id, deks, index_keys, current = raw
    return FileKeys(file_id, deks, index_keys, current)


def worker(inp: IO[bytes], out: IO[bytes]) -> bool:
    """The worker's loop: ``("init", spec, columns, keys, hash_code)``, then ``("keys", keys)`` and
    ``("seal", rows, plan, now)`` messages, each seal answered in order; end of input: done (True). A
    failure is answered with its type name and ends the loop (False)."""
    # Messages are read by their own thread, so the server never blocks writing a chunk while this
    # process blocks writing an answer (both pipes full).
    inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def read() -> None:
        try:
            while True:
                inbox.put(_recv(inp))
        except (EOFError, OSError):
            inbox.put(None)

    threading.Thread(target=read, daemon=True).start()
    spec: FileSpec | None = None
    check: Any = None
    keys: FileKeys | None = None
    version_hash: Callable[[str, int, str | None, bytes], str] | None = None
    while (msg := inbox.get()) is not None:
        try:
            kind = msg[0]
            if kind == "init":
                _, spec, columns, raw, hash_code = msg
                check = cells_normaliser(spec, columns)
                keys = _keys(raw)
                version_hash = hasher(hash_code) if hash_code is not None else None
            elif kind == "keys":
                keys = _keys(msg[1])
            elif kind == "seal":
                assert spec is not None and keys is not None
                _send(out, ("sealed", *seal_chunk(keys, spec, check, msg[1], msg[2], msg[3], version_hash)))
            else:
                raise ValueError("unknown message")
        except BaseException as exc:  # reported by type only: a message may hold a value
            _send(out, ("error", type(exc).__name__))
            return False
    return True


def main() -> None:
    out = sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers goes to the server's pipe
    # The reader thread gets the interpreter back within 0.1 ms (not 5) after each read from the pipe,
    # so the server is never kept waiting to hand over the next chunk while this one is sealed.
    sys.setswitchinterval(1e-4)
    status = 1
    try:
        status = 0 if worker(sys.stdin.buffer, out) else 1
    finally:
        # Nothing to flush or clean up (every answer is flushed as sent; the keys live in this process's
        # memory only): exit at once, so the import that closed the pipe is not kept waiting for the
        # interpreter to wind down.
        os._exit(status)


# ---------------------------------------------------------------------------- the server's side


class Sealer:
    """The server's handle on one worker: ``submit`` chunks, read their ``result`` in the same order,
    ``close`` when done (always: it is torn down, killed if it does not exit). ``hash_code``: the file's
    code when its records' versions go into the log (integrity 2): the worker hashes them too."""

    def __init__(self, spec: FileSpec, columns: Sequence[str | None], keys: FileKeys,
                 hash_code: str | None = None) -> None:
        self._proc = subprocess.Popen(  # this interpreter, this module, no shell
            [sys.executable, "-m", "hogo.services.import_sealer"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, close_fds=True)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._in: IO[bytes] = self._proc.stdin
        self._out: IO[bytes] = self._proc.stdout
        for fh in (self._in, self._out):  # a chunk goes through in one or two writes, not sixteen
            with contextlib.suppress(OSError, AttributeError):
                fcntl.fcntl(fh.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        self._keys: FileKeys = keys
        self._send(("init", spec, list(columns), keys.raw(), hash_code))

    @property
    def pid(self) -> int:
        return self._proc.pid

    def _send(self, msg: Any) -> None:
        try:
            _send(self._in, msg)
        except (BrokenPipeError, OSError):
            raise SealerFailed(f"the import's sealing process stopped ({self._why()})") from None

    def _why(self) -> str:
        code = self._proc.poll()
        return "still running" if code is None else f"exit status {code}"

    def submit(self, rows: Sequence[tuple[str, Sequence[str]]], plan: Sequence[tuple[int, int]] | None,
               now: dt.datetime, keys: FileKeys) -> None:
        if keys is not self._keys:
            self._send(("keys", keys.raw()))
            self._keys = keys
        self._send(("seal", rows, plan, now))

    def result(self) -> tuple[list[tuple[int, list[tuple[str, str]]]], list[Good], list[tuple[str, bytes, int]]]:
        try:
            msg = _recv(self._out)
        except (EOFError, OSError):
            self._proc.wait(timeout=5)
            raise SealerFailed(f"the import's sealing process stopped ({self._why()})") from None
        if msg[0] != "sealed":
            raise SealerFailed(f"the import's sealing process failed ({msg[1]})")
        return msg[1], msg[2], msg[3]

    def close(self) -> None:
        for fh in (self._in, self._out):
            with contextlib.suppress(OSError):
                fh.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()


def stream_size(stream: Any) -> int | None:
    """The bytes left in a seekable stream (a request body in memory), or ``None``."""
    try:
        here = stream.tell()
        end = stream.seek(0, 2)
        stream.seek(here)
        return int(end - here)
    except (AttributeError, OSError, ValueError):
        return None


if __name__ == "__main__":
    main()

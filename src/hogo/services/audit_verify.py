"""Verifying the log without trusting whoever runs the database (SEC-107(3), ANON-12, MLIT-9.5.8).

``verify_database`` recomputes everything from the stored entries: each entry's index and leaf hash,
the search columns against the entry they index, the tree against every signed checkpoint (the
database's own and any the auditor kept or the off-host sinks hold), and the stored tree nodes. It
names the first bad entry and the kind of damage:

* ``modified``  — an entry, its hash, its indexed columns, a tree node or a checkpoint was changed;
* ``missing``   — an index is skipped (an entry was deleted from the middle);
* ``inserted``  — an entry claims an index already taken (one was slipped in);
* ``reordered`` — entries sit at indices other than their own;
* ``truncated`` — the log is shorter than a checkpoint the database itself holds;
* ``rolled back`` — the database is self-consistent but older than a checkpoint seen elsewhere;
* ``forked``    — a checkpoint of the same log, validly signed, disagrees with this history.

How the fast check (``deep=False``) keeps up with a million entries: rows are read in batches and a
batch with nothing wrong in it is checked with whole-batch operations (every leaf hash recomputed
and compared, every claimed index compared, the seq column compared), the tree's 256-leaf blocks
are hashed level by level, and only a batch with a problem in it is walked entry by entry, which
gives the same problems in the same order. On SQLite a large log (either check) is split in two: a
worker process (``_worker_main``; this module's import stays light for it) checks entries [0, m) on
its own read snapshot and returns its problems and blocks' roots, while this process checks [m, head)
on the snapshot the run started with, so entries beyond that head are never considered. The worker's
half is used only if it is gapless and each payload it saw removed is covered by a retention record
in this snapshot; otherwise this process rechecks it (and the whole log if the halves disagree about
positions).

``verify_bundle`` checks an exported bundle offline with nothing but the log's public key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from operator import itemgetter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from hogo.domain import merkle
from hogo.domain.auditlog import TILE_HEIGHT, VERSION_TAG, EntryFormatError, decode, entry_seq

# SQLAlchemy, the models and the checkpoint signatures are imported where they are used: the worker
# process imports this module and needs none of them, and it starts on the verification's clock.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from sqlalchemy import Connection, Engine

    from hogo.crypto import checkpoint as notes

log = logging.getLogger("hogo.audit")

MODIFIED, MISSING, INSERTED, REORDERED = "modified", "missing", "inserted", "reordered"
TRUNCATED, ROLLED_BACK, FORKED = "truncated", "rolled back", "forked"
UNPROVEN = "unproven"
EXPIRED_EVENT = "audit:log:expired"
BUNDLE_FORMAT = "hogo-audit-bundle/1"
_TILE = 1 << TILE_HEIGHT


@dataclasses.dataclass(frozen=True)
class Problem:
    kind: str
    seq: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "seq": self.seq, "message": self.message}


@dataclasses.dataclass
class Report:
    size: int = 0
    entries_checked: int = 0
    expired: int = 0
    checkpoints_verified: int = 0
    latest_checkpoint: str | None = None  # the newest signed note found valid (to remember)
    latest_size: int = 0
    problems: list[Problem] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first(self) -> Problem | None:
        """The problem at the lowest index (problems without an index come last)."""
        if not self.problems:
            return None
        return min(self.problems, key=lambda p: (p.seq is None, p.seq or 0))

    def add(self, kind: str, seq: int | None, message: str) -> None:
        if len(self.problems) < 1000:
            self.problems.append(Problem(kind, seq, message))

    def as_dict(self) -> dict[str, Any]:
        first = self.first
        return {"ok": self.ok, "size": self.size, "entries_checked": self.entries_checked, "expired": self.expired,
                "checkpoints_verified": self.checkpoints_verified, "latest_size": self.latest_size,
                "first_problem": first.as_dict() if first else None,
                "problems": [p.as_dict() for p in self.problems]}


# -------------------------------------------------------------------------------- tree streaming

_MAX_PROBLEMS = 1000
_BATCH = 1 << 13  # rows per fetch: 32 blocks of 256 leaves
_sha256 = hashlib.sha256
_leaf_prefix, _node_prefix = _sha256(b"\x00"), _sha256(b"\x01")
_first, _second, _third = itemgetter(0), itemgetter(1), itemgetter(2)
_claim = (VERSION_TAG + b"%d ").__mod__  # the start every entry at position p must have


class _Sink(Protocol):
    def add(self, kind: str, seq: int | None, message: str) -> None: ...


class _Stack:
    """Streams hashes of complete subtrees at ``base`` level into larger ones (left to right), noting
    the roots completed at stored levels (multiples of 8) so they can be compared with the database."""

    def __init__(self, base: int = 0) -> None:
        self.base = base
        self.stack: list[tuple[int, bytes]] = []
        self.count = 0
        self.completed: list[tuple[int, int, bytes]] = []  # (level, idx, hash)

    def push(self, node: bytes) -> None:
        height = 0
        stack = self.stack
        while stack and stack[-1][0] == height:
            node = merkle.node_hash(stack.pop()[1], node)
            height += 1
            level = self.base + height
            if level % TILE_HEIGHT == 0:
                self.completed.append((level, ((self.count + 1) >> height) - 1, node))
        stack.append((height, node))
        self.count += 1

    def root(self, tail: list[bytes]) -> bytes:
        """The root of the tree of the pushed subtrees followed by ``tail`` (smaller complete subtrees)."""
        hashes = [h for _, h in self.stack] + tail
        return merkle.fold_right(hashes) if hashes else merkle.EMPTY_ROOT


def _perfect_root(hashes: list[bytes]) -> bytes:
    """The root of a complete subtree from its 2^k leaves, level by level (faster than a stack)."""
    while len(hashes) > 1:
        hashes = _block_level(hashes)
    return hashes[0]


def _leaf_hashes(entries: list[bytes]) -> list[bytes]:
    """SHA-256(0x00 ‖ entry) of each entry (copying a hash already fed the prefix beats starting anew)."""
    out: list[bytes] = []
    append, start = out.append, _leaf_prefix.copy
    for entry in entries:
        h = start()
        h.update(entry)
        append(h.digest())
    return out


def _block_level(hashes: list[bytes]) -> list[bytes]:
    """The next level up: SHA-256(0x01 ‖ left ‖ right) of each pair of nodes."""
    out: list[bytes] = []
    append, start = out.append, _node_prefix.copy
    pairs = iter(hashes)
    for left, right in zip(pairs, pairs, strict=True):
        h = start()
        h.update(left + right)
        append(h.digest())
    return out


def _claims(first: int, n: int) -> list[bytes]:
    """The starts ``hogo-log/1 <p> `` of the entries at positions first … first+n-1, made in bulk."""
    tag = VERSION_TAG.decode()
    return (tag + f" \n{tag}".join(map(str, range(first, first + n))) + " ").encode().split(b"\n")


def _block_roots(leaves: list[bytes]) -> list[bytes]:
    """The roots of consecutive 256-leaf blocks (``len(leaves)`` a multiple of 256), one level at a time."""
    for _ in range(TILE_HEIGHT):
        leaves = _block_level(leaves)
    return leaves


class _Scan:
    """One pass, in seq order, over the stored entries from position ``start`` (a multiple of 256): the
    entry checks, the roots of its complete 256-leaf blocks, and for each checkpoint size that ends
    inside a block the subtrees of that block's leaves before it. Problems carry the position at which
    they were found so that two scans merge into the order one scan of the whole log gives."""

    def __init__(self, start: int, total: int, sizes: Iterable[int], deep: bool = False) -> None:
        if start % _TILE:
            raise ValueError("a scan starts at a block boundary")
        self.start = self.position = start
        self.total = total
        self.deep = deep
        self.gap = False  # a seq differed from its position (missing or inserted rows)
        self.blocks: list[bytes] = []
        self.pending: list[bytes] = []  # the leaves of the block not yet complete
        self.want = sorted(s for s in set(sizes) if s > start and s % _TILE)  # sizes that need a tail
        self.tails: dict[int, list[bytes]] = {}
        self.problems: list[tuple[int, str, int | None, str]] = []  # (position found, kind, seq, message)
        self.expired: list[int] = []

    def add(self, kind: str, seq: int | None, message: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append((self.position, kind, seq, message))

    def to_json(self) -> bytes:
        """What the parent needs of a finished scan (the worker's answer)."""
        return json.dumps({"start": self.start, "total": self.total, "position": self.position, "gap": self.gap,
                           "blocks": b"".join(self.blocks).hex(), "pending": b"".join(self.pending).hex(),
                           "tails": [[s, b"".join(t).hex()] for s, t in self.tails.items()],
                           "problems": self.problems, "expired": self.expired}).encode()

    @classmethod
    def from_json(cls, data: bytes) -> _Scan:
        d = json.loads(data)
        scan = cls(d["start"], d["total"], ())
        scan.position, scan.gap, scan.expired = int(d["position"]), bool(d["gap"]), [int(s) for s in d["expired"]]
        scan.blocks, scan.pending = _split32(d["blocks"]), _split32(d["pending"])
        scan.tails = {int(s): _split32(t) for s, t in d["tails"]}
        scan.problems = [(int(w), str(k), None if q is None else int(q), str(m)) for w, k, q, m in d["problems"]]
        return scan

    def exact(self, end: int) -> bool:
        """Whether this scan read exactly the entries [start, end), each at its own seq."""
        return not self.gap and self.position == end

    def feed(self, rows: Sequence[Sequence[Any]]) -> None:
        """Rows of (seq, entry, leaf_hash, expired_at[, the search columns when deep]) in seq order."""
        n = len(rows)
        if not n:
            return
        pos = self.position
        entries = list(map(_second, rows))
        leaves = list(map(_third, rows))
        if set(map(type, leaves)) != {bytes}:
            leaves = list(map(bytes, leaves))
        if (list(map(_first, rows)) == list(range(pos, pos + n)) and set(map(type, entries)) == {bytes}
                and _leaf_hashes(entries) == leaves
                and all(map(bytes.startswith, entries, _claims(pos, n)))):
            if self.deep:  # every entry is intact: only the search columns are left to compare
                for i, row in enumerate(rows):
                    self.position = pos + i
                    _compare_columns(self, row[0], row[1], row)
            self.position = pos + n
        else:
            self._one_by_one(rows)
        self._grow(pos, leaves)

    def _one_by_one(self, rows: Sequence[Sequence[Any]]) -> None:
        """The same checks, entry by entry, naming each problem (a batch with something wrong in it)."""
        for row in rows:
            seq, entry, position = row[0], row[1], self.position
            if seq != position and not self.gap:
                self.add(MISSING if seq > position else INSERTED, position,
                         f"entry {position} is missing (the next stored entry is {seq})" if seq > position
                         else f"entry {seq} appears again at position {position}")
                self.gap = True
            if entry is None:
                if row[3] is None:
                    self.add(MODIFIED, seq, f"entry {seq} has no payload and no expiry: it was erased")
                else:
                    self.expired.append(seq)
            else:
                entry = bytes(entry)
                if merkle.leaf_hash(entry) != bytes(row[2]):
                    self.add(MODIFIED, seq, f"entry {seq} does not match its leaf hash: it was changed")
                if not entry.startswith(_claim(position)):
                    _misplaced(self, entry, position, self.total)
                if self.deep:
                    _compare_columns(self, seq, entry, row)
            self.position = position + 1

    def _grow(self, first: int, leaves: list[bytes]) -> None:
        """Adds the leaves of positions [first, …) to the tree: complete blocks become roots."""
        if self.pending:
            first -= len(self.pending)
            leaves = self.pending + leaves
        end = first + len(leaves)
        want = self.want
        while want and want[0] <= end:  # every leaf before this checkpoint size is here
            size = want.pop(0)
            block = leaves[size - size % _TILE - first:size - first]
            self.tails[size] = [_perfect_root(block[idx << lv:(idx + 1) << lv])
                                for lv, idx in merkle.complete_subtrees(0, len(block))]
        full = len(leaves) - len(leaves) % _TILE
        if full:
            self.blocks.extend(_block_roots(leaves[:full] if full < len(leaves) else leaves))
        self.pending = leaves[full:]


def _split32(text: str) -> list[bytes]:
    raw = bytes.fromhex(text)
    return [raw[i:i + 32] for i in range(0, len(raw), 32)]


def _merge(scans: list[_Scan], stored_nodes: dict[tuple[int, int], bytes], sizes: Sequence[int],
           report: Report) -> dict[int, bytes]:
    """Joins consecutive scans (each but the last exact) into the report: their problems and those of
    the stored nodes, in the order one pass would find them, and the root at each checkpoint size."""
    found = [(when, 0, kind, seq, message) for scan in scans for when, kind, seq, message in scan.problems]
    tails: dict[int, list[bytes]] = {}
    for scan in scans:
        tails.update(scan.tails)
    end = scans[-1].position
    due = sorted(s for s in set(sizes) if s <= end)
    roots_at: dict[int, bytes] = {}
    upper = _Stack(base=TILE_HEIGHT)
    b = 0
    for scan in scans:
        for root in scan.blocks:
            while due and due[0] >> TILE_HEIGHT == b:
                size = due.pop(0)
                roots_at[size] = upper.root(tails.get(size, []))
            upper.push(root)
            when = ((b + 1) << TILE_HEIGHT) - 1
            for level, idx, h in [(TILE_HEIGHT, b, root), *upper.completed]:
                stored = stored_nodes.get((level, idx))
                if stored is None:
                    found.append((when, 1, MISSING, ((idx + 1) << level) - 1, f"tree node {level}/{idx} is missing"))
                elif stored != h:
                    found.append((when, 1, MODIFIED, idx << level, f"tree node {level}/{idx} (entries "
                                  f"{idx << level}–{((idx + 1) << level) - 1}) differs from the entries"))
            upper.completed.clear()
            b += 1
    for size in due:
        roots_at[size] = upper.root(tails.get(size, []))
    found.sort(key=lambda p: (p[0], p[1]))
    for _, _, kind, seq, message in found:
        report.add(kind, seq, message)
    return roots_at


# ----------------------------------------------------------------------------- the database

# A log at least this long is split between this process and a worker process (SQLite, fast check).
PARALLEL_MIN_ENTRIES = 100_000
_WORKER_SHARE = 0.5  # of the entries, rounded down to whole blocks; the worker starts in tens of milliseconds
_WORKER_GRACE = 30.0  # seconds a worker may lag this process's half (a stuck one is killed and its half redone here)
_ROWS = "SELECT seq, entry, leaf_hash, expired_at FROM audit_events"


@dataclasses.dataclass(frozen=True)
class SignedCheckpoint:
    source: str  # "database", "sink file:…", "remembered"
    note: str
    cp: notes.Checkpoint


def _checked(report: Report, source: str, note: str, key_name: str, public_key: Ed25519PublicKey,
             ) -> SignedCheckpoint | None:
    from hogo.crypto import checkpoint as notes

    try:
        cp = notes.verify_note(note, key_name, public_key, origin=key_name)
    except notes.CheckpointError as exc:
        report.add(MODIFIED if source == "database" else FORKED, None,
                   f"a checkpoint from {source} is not validly signed by this log's key ({exc})")
        return None
    return SignedCheckpoint(source, note, cp)


def verify_database(engine: Engine, *, key_name: str, public_key: Ed25519PublicKey,
                    external: Iterable[tuple[str, str]] = (), deep: bool = True,
                    progress: Callable[[int, int], None] | None = None) -> Report:
    """Recompute the log in ``engine`` (a stopped instance's database, or the live one read in one
    snapshot). ``external`` are (source, signed note) pairs kept outside the database."""
    from hogo.store.db import read_snapshot

    report = Report()
    with read_snapshot(engine) as conn:
        _verify(conn, report, key_name, public_key, list(external), deep, progress)
    return report


def _verify(conn: Connection, report: Report, key_name: str, public_key: Ed25519PublicKey,
            external: list[tuple[str, str]], deep: bool, progress: Callable[[int, int], None] | None) -> None:
    from sqlalchemy import select

    from hogo.store.models import AuditCheckpoint, AuditHead, AuditNode

    head = conn.execute(select(AuditHead.size).where(AuditHead.id == 1)).scalar()
    total = int(head or 0)
    sizes = sorted(s for (s,) in conn.execute(select(AuditCheckpoint.size)))
    worker = _Worker.start(conn, total, sizes, deep)
    try:
        internal: list[SignedCheckpoint | None] = []
        for size, note in conn.execute(select(AuditCheckpoint.size, AuditCheckpoint.note)
                                       .order_by(AuditCheckpoint.size)):
            parsed = _checked(report, "database", note, key_name, public_key)
            if parsed is not None and parsed.cp.size != size:
                report.add(MODIFIED, None, f"the checkpoint stored as size {size} signs size {parsed.cp.size}")
            internal.append(parsed)
        outside = [_checked(report, src, n, key_name, public_key) for src, n in external]
        signed = [c for c in internal + outside if c is not None]
        by_size: dict[int, list[SignedCheckpoint]] = {}
        for c in signed:
            by_size.setdefault(c.cp.size, []).append(c)
        for size, group in by_size.items():
            if len({c.cp.root for c in group}) > 1:
                report.add(FORKED, None, f"two validly signed checkpoints of size {size} disagree "
                                         f"({', '.join(sorted({c.source for c in group}))})")
        stored_nodes = {(lv, ix): bytes(h) for lv, ix, h in conn.execute(select(AuditNode.level, AuditNode.idx,
                                                                                AuditNode.hash))}
        scans = _scan_all(conn, worker, total, sorted(by_size), deep, progress)
    finally:
        if worker is not None:
            worker.stop()
    roots_at = _merge(scans, stored_nodes, sorted(by_size), report)
    position = scans[-1].position
    if progress is not None:
        progress(position, total)
    report.size = position
    report.entries_checked = position
    report.expired = sum(len(s.expired) for s in scans)
    if head is None:
        report.add(MODIFIED, None, "the log's head is missing")
    elif int(head) != position:
        kind = TRUNCATED if int(head) > position else INSERTED
        report.add(kind, min(position, int(head)),
                   f"the head counts {head} entries but {position} are stored")
    covered = _retention_ranges(conn) if report.expired else []
    for scan in scans:
        for seq in scan.expired:
            if not any(lo <= seq < hi for lo, hi in covered):
                report.add(MODIFIED, seq, f"entry {seq}'s payload was removed without a recorded retention run")
    internal_max = max((c.cp.size for c in signed if c.source == "database"), default=0)
    for size in sorted(by_size):
        for c in by_size[size]:
            if size > position:
                if c.source == "database":
                    report.add(TRUNCATED, position, f"the database's checkpoint of size {size} covers entries "
                                                    f"{position}–{size - 1}, which are gone")
                elif internal_max < size:
                    report.add(ROLLED_BACK, position, f"{c.source} holds a checkpoint of size {size}; the "
                                                      f"database stops at {position}: it was rolled back or "
                                                      "truncated")
                continue
            if roots_at.get(size) != c.cp.root:
                kind = MODIFIED if c.source == "database" else FORKED
                report.add(kind, None, f"the entries up to {size} do not match the checkpoint from {c.source}")
            else:
                report.checkpoints_verified += 1
                if size >= report.latest_size:
                    report.latest_size, report.latest_checkpoint = size, c.note


def _scan_all(conn: Connection, worker: _Worker | None, total: int, sizes: list[int], deep: bool,
              progress: Callable[[int, int], None] | None) -> list[_Scan]:
    """The scans that together cover the log in this snapshot: [0, head) here, or the worker's [0, m)
    and [m, head) here. The worker's half is taken only if it is gapless (so positions here agree
    with one pass) and every payload it found removed was removed by a retention run this snapshot
    records (it may have looked later, after a run); otherwise this process reads that half again."""
    if worker is None:
        return [_scan_here(conn, 0, None, total, sizes, deep, progress)]
    started = time.monotonic()
    mine = _scan_here(conn, worker.end, None, total, sizes, deep, progress)
    theirs = worker.result(timeout=_WORKER_GRACE + 2 * (time.monotonic() - started))  # it has as much to do
    if theirs is not None and theirs.exact(worker.end) and theirs.expired:
        covered = _retention_ranges(conn)
        if not all(any(lo <= seq < hi for lo, hi in covered) for seq in theirs.expired):
            theirs = None
    if theirs is None or not theirs.exact(worker.end):
        theirs = _scan_here(conn, 0, worker.end, total, sizes, deep, None)
    if not theirs.exact(worker.end):  # rows are missing or extra before m: positions after it shift
        return [_scan_here(conn, 0, None, total, sizes, deep, progress)]
    return [theirs, mine]


def _scan_here(conn: Connection, start: int, end: int | None, total: int, sizes: list[int], deep: bool,
               progress: Callable[[int, int], None] | None) -> _Scan:
    scan = _Scan(start, total, sizes, deep)
    for rows in _batches(conn, start, end, deep):
        scan.feed(rows)
        if progress is not None:
            progress(scan.position, total)
    return scan


def _batches(conn: Connection, start: int, end: int | None, deep: bool) -> Iterator[Sequence[Sequence[Any]]]:
    """The rows with start <= seq < end, ordered by seq, in batches."""
    from sqlalchemy import select, text

    from hogo.store.models import AuditEvent

    if deep:  # typed values, to compare with the entry
        ev: Any = AuditEvent.__table__
        query = select(ev.c.seq, ev.c.entry, ev.c.leaf_hash, ev.c.expired_at, ev.c.ts, ev.c.event, ev.c.outcome,
                       ev.c.reason, ev.c.actor_id, ev.c.actor_name, ev.c.subject_user_id, ev.c.target,
                       ev.c.file_code, ev.c.purpose, ev.c.record_count, ev.c.client_addr, ev.c.session_id,
                       ev.c.details).where(ev.c.seq >= start)
        if end is not None:
            query = query.where(ev.c.seq < end)
        result = conn.execution_options(stream_results=True, yield_per=_BATCH).execute(query.order_by(ev.c.seq))
        yield from result.partitions()
    elif conn.dialect.name == "sqlite":  # plain tuples straight from the driver, in this transaction
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            yield from _sqlite_batches(cursor, start, end)
        finally:
            cursor.close()
    else:
        sql = f"{_ROWS} WHERE seq >= :start" + ("" if end is None else " AND seq < :end") + " ORDER BY seq"
        result = conn.execution_options(stream_results=True, yield_per=_BATCH).execute(
            text(sql), {"start": start, "end": end})
        yield from result.partitions()


def _sqlite_batches(cursor: Any, start: int, end: int | None) -> Iterator[list[tuple[Any, ...]]]:
    if end is None:
        cursor.execute(f"{_ROWS} WHERE seq >= ? ORDER BY seq", (start,))
    else:
        cursor.execute(f"{_ROWS} WHERE seq >= ? AND seq < ? ORDER BY seq", (start, end))
    while rows := cursor.fetchmany(_BATCH):
        yield rows


def _retention_ranges(conn: Connection) -> list[tuple[int, int]]:
    """The ranges whose payloads retention runs recorded removing (ANON-12)."""
    from sqlalchemy import select

    from hogo.store.models import AuditEvent

    covered: list[tuple[int, int]] = []
    for entry in conn.execute(select(AuditEvent.entry).where(AuditEvent.event == EXPIRED_EVENT)).scalars():
        if entry is None:
            continue
        _, e = decode(bytes(entry))
        covered.extend((int(a), int(b)) for a, b in (e.details or {}).get("ranges", []))
    return covered


class _Worker:
    """A process that scans entries [0, end) of the same SQLite file on its own read snapshot."""

    def __init__(self, proc: subprocess.Popen[bytes], end: int) -> None:
        self.proc = proc
        self.end = end

    @classmethod
    def start(cls, conn: Connection, total: int, sizes: list[int], deep: bool) -> _Worker | None:
        path = conn.engine.url.database if conn.dialect.name == "sqlite" else None
        end = int(total * _WORKER_SHARE) >> TILE_HEIGHT << TILE_HEIGHT
        if total < PARALLEL_MIN_ENTRIES or not end or not path or not os.path.isfile(path) or not sys.executable:
            return None
        root = str(Path(__file__).resolve().parents[2])  # the directory holding the hogo package
        code = (f"import sys; sys.path.insert(0, {root!r}); "
                "from hogo.services.audit_verify import _worker_main; _worker_main()")
        job = {"uri": Path(path).resolve().as_uri() + "?mode=ro", "end": end, "total": total, "deep": deep,
               "sizes": [s for s in sizes if 0 < s <= end]}
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-c", code], stdin=subprocess.PIPE,  # noqa: S603 - this
                                    # interpreter running this module
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        except OSError as exc:
            log.warning("log verification runs in one process: the worker did not start (%s)", exc)
            return None
        worker = cls(proc, end)
        try:
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(job).encode() + b"\n")
            proc.stdin.flush()
        except OSError:
            pass  # it died already: result() says so
        return worker

    def result(self, timeout: float) -> _Scan | None:
        """The worker's scan, or None if it failed or is not done within ``timeout`` seconds (this
        process then scans that half itself)."""
        try:
            out, err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            out, err = b"", b"timed out"
        except OSError:
            out, err = b"", b""
        if self.proc.returncode == 0:
            try:
                return _Scan.from_json(out)
            except (ValueError, KeyError, TypeError):
                pass
        log.warning("log verification: the worker failed (exit %s): %s", self.proc.returncode,
                    err.decode("utf-8", "replace").strip()[-500:])
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.communicate()


def _worker_main() -> None:
    """The worker process: reads a job (one JSON line) from stdin, writes its ``_Scan`` to stdout."""
    import sqlite3

    job = json.loads(sys.stdin.buffer.readline())
    scan = _Scan(0, job["total"], job["sizes"], job["deep"])
    db = sqlite3.connect(job["uri"], uri=True, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA busy_timeout=30000")
        if job["deep"]:  # the search columns typed as the models type them, through SQLAlchemy
            from sqlalchemy import create_engine
            from sqlalchemy.pool import StaticPool

            engine = create_engine("sqlite://", creator=lambda: db, poolclass=StaticPool)
            with engine.connect() as conn:
                conn.exec_driver_sql("BEGIN")
                for rows in _batches(conn, 0, job["end"], True):
                    scan.feed(rows)
        else:
            db.execute("BEGIN")
            for rows in _sqlite_batches(db.cursor(), 0, job["end"]):
                scan.feed(rows)
        if db.in_transaction:
            db.execute("ROLLBACK")
    finally:
        db.close()
    sys.stdout.buffer.write(scan.to_json())
    sys.stdout.buffer.flush()


def _misplaced(report: _Sink, entry: bytes, position: int, total: int) -> None:
    """An entry that does not claim its own position: say which kind of damage that is."""
    try:
        claim = entry_seq(entry)
    except EntryFormatError as exc:
        report.add(MODIFIED, position, f"entry {position} is malformed ({exc})")
        return
    if claim < position:
        report.add(INSERTED, position, f"the entry at position {position} claims index {claim}, which an "
                                       "earlier entry holds: one was inserted")
    elif claim < total:
        report.add(REORDERED, position, f"the entry at position {position} claims index {claim}: entries were "
                                        "reordered or removed")
    else:
        report.add(INSERTED, position, f"the entry at position {position} claims index {claim}, beyond the "
                                       "log's end: it was added")


def _compare_columns(report: _Sink, seq: int, entry: bytes, row: Any) -> None:
    try:
        _, e = decode(entry)
    except EntryFormatError as exc:
        report.add(MODIFIED, seq, f"entry {seq} is malformed ({exc})")
        return
    (ts, event, outcome, reason, actor_id, actor_name, subject, target, file_code, purpose, record_count,
     client, session, details) = row[4:]
    # Aware datetimes are equal exactly when format_ts writes the same text for them (UTC, microseconds).
    expected = (e.ts, e.event, e.outcome, e.reason, e.actor_id, e.actor, e.subject_user_id, e.target,
                e.file, e.purpose, len(set(e.records)), e.client, e.session, e.details)
    actual = (ts, event, outcome, reason, actor_id, actor_name, subject, target, file_code, purpose,
              record_count, client, session, details)
    if expected != actual:
        names = ("ts", "event", "outcome", "reason", "actor_id", "actor_name", "subject_user_id", "target",
                 "file_code", "purpose", "record_count", "client_addr", "session_id", "details")
        changed = [n for n, a, b in zip(names, expected, actual, strict=True) if a != b]
        report.add(MODIFIED, seq, f"entry {seq}'s indexed columns ({', '.join(changed)}) differ from the entry")



# ----------------------------------------------------------------------------- range proofs


def range_proof(a: int, b: int, size: int, subtree: Callable[[int, int], bytes]) -> list[bytes]:
    """The roots of the maximal subtrees outside [a, b), in the order ``root_from_range`` needs them:
    with the leaves [a, b) they give the root of the tree of ``size`` (a compact proof for a bundle)."""
    out: list[bytes] = []

    def walk(lo: int, hi: int) -> None:
        if hi <= a or lo >= b:
            out.append(subtree(lo, hi))
        elif hi - lo > 1:
            k = merkle.split_point(hi - lo)
            walk(lo, lo + k)
            walk(lo + k, hi)

    if size > 0:
        walk(0, size)
    return out


def root_from_range(a: int, b: int, size: int, leaves: Sequence[bytes], nodes: Sequence[bytes]) -> bytes | None:
    """Recompute the root from leaves [a, b) and ``range_proof``'s nodes; None if the proof is malformed."""
    if not (0 <= a <= b <= size) or len(leaves) != b - a:
        return None
    it = iter(nodes)

    def walk(lo: int, hi: int) -> bytes:
        if hi <= a or lo >= b:
            return next(it)
        if hi - lo == 1:
            return leaves[lo - a]
        k = merkle.split_point(hi - lo)
        left = walk(lo, lo + k)
        return merkle.node_hash(left, walk(lo + k, hi))

    if size == 0:
        return merkle.EMPTY_ROOT if not nodes else None
    try:
        root = walk(0, size)
    except StopIteration:
        return None
    if next(it, None) is not None:
        return None
    return root


# ----------------------------------------------------------------------------------- bundles


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_entries(path: Path) -> Iterator[bytes | None]:
    """``entries.log``: one entry per line, exactly as logged; ``-`` for an expired payload."""
    with path.open("rb") as fh:
        for line in fh:
            line = line.rstrip(b"\n")
            yield None if line == b"-" else line


def verify_bundle(directory: Path, *, public_key_text: str | None = None,
                  remembered: str | None = None) -> Report:
    """Check an exported bundle offline: the manifest's signature and digests, every entry against its
    leaf, the leaves against the signed checkpoint (range proof), and the bundle's checkpoints against
    each other (consistency proofs) and against ``remembered`` (a checkpoint the auditor kept)."""
    from hogo.crypto import checkpoint as notes

    report = Report()
    try:
        manifest_bytes = (directory / "manifest.json").read_bytes()
        manifest = json.loads(manifest_bytes)
        key_text = public_key_text or (directory / "public_key.txt").read_text(encoding="utf-8").strip()
        key_name, public_key = notes.parse_public_key_text(key_text)
    except (OSError, ValueError) as exc:
        report.add(MODIFIED, None, f"the bundle cannot be read ({exc})")
        return report
    if manifest.get("format") != BUNDLE_FORMAT:
        report.add(MODIFIED, None, f"not a {BUNDLE_FORMAT} bundle")
        return report
    try:
        signed_text = notes.open_note((directory / "manifest.sig").read_text(encoding="utf-8"), key_name, public_key)
    except (OSError, notes.CheckpointError) as exc:
        report.add(MODIFIED, None, f"the manifest's signature does not verify ({exc})")
        return report
    if signed_text != f"{BUNDLE_FORMAT}\n{hashlib.sha256(manifest_bytes).hexdigest()}\n":
        report.add(MODIFIED, None, "the manifest is not the one that was signed")
        return report
    for name, digest in manifest["files"].items():
        path = directory / name
        if not path.is_file() or file_digest(path) != digest:
            report.add(MODIFIED, None, f"{name} differs from the manifest")
    if report.problems:
        return report
    a, b, size = int(manifest["first"]), int(manifest["end"]), int(manifest["size"])
    report.size = size
    try:
        cp = notes.verify_note((directory / "checkpoint.note").read_text(encoding="utf-8"), key_name, public_key,
                               origin=key_name)
    except (OSError, notes.CheckpointError) as exc:
        report.add(MODIFIED, None, f"the bundle's checkpoint is not valid ({exc})")
        return report
    if cp.size != size:
        report.add(MODIFIED, None, f"the manifest says size {size}, the checkpoint {cp.size}")
        return report
    leaf_bytes = (directory / "leaves.bin").read_bytes()
    leaves = [leaf_bytes[i:i + 32] for i in range(0, len(leaf_bytes), 32)]
    if len(leaves) != b - a:
        report.add(MISSING if len(leaves) < b - a else INSERTED, a + min(len(leaves), b - a),
                   f"the bundle holds {len(leaves)} leaf hashes for entries {a}–{b - 1}")
        return report
    position = a
    for entry in read_entries(directory / "entries.log"):
        if position >= b:
            report.add(INSERTED, position, f"the bundle holds entries beyond {b - 1}")
            break
        if entry is None:
            report.expired += 1
        else:
            if merkle.leaf_hash(entry) != leaves[position - a]:
                report.add(MODIFIED, position, f"entry {position} does not match its leaf hash")
            try:
                claim = entry_seq(entry)
            except EntryFormatError:
                claim = -1
            if claim != position:
                report.add(REORDERED if a <= claim < b else INSERTED, position,
                           f"the entry at position {position} claims index {claim}")
        position += 1
    if position < b:
        report.add(MISSING, position, f"entries {position}–{b - 1} are missing from the bundle")
    report.entries_checked = position - a
    nodes = [bytes.fromhex(h) for h in manifest["range_proof"]]
    root = root_from_range(a, b, size, leaves, nodes)
    if root != cp.root:
        report.add(MODIFIED, a, "the entries do not lead to the signed checkpoint's root")
    else:
        report.checkpoints_verified += 1
        report.latest_size, report.latest_checkpoint = size, (directory / "checkpoint.note").read_text("utf-8")
    proven: dict[int, bytes] = {cp.size: cp.root}
    for item in manifest.get("consistency", []):
        old = _check_consistency(report, item["note"], item["proof"], cp, key_name, public_key, "the bundle")
        if old is not None:
            proven[old.size] = old.root
    if remembered:
        old = _check_consistency(report, remembered, None, cp, key_name, public_key, "the remembered checkpoint")
        if old is not None and old.size <= cp.size:
            if old.size not in proven:
                report.add(UNPROVEN, None, f"the bundle holds no proof that it extends the remembered checkpoint "
                                           f"of size {old.size}; verify against the server or the data directory")
            elif proven[old.size] != old.root:
                report.add(FORKED, old.size, f"the remembered checkpoint of size {old.size} disagrees with the "
                                             "bundle's history: the log was forked")
    return report


def _check_consistency(report: Report, note: str, proof_hex: list[str] | None, latest: notes.Checkpoint,
                       key_name: str, public_key: Ed25519PublicKey, source: str) -> notes.Checkpoint | None:
    """The older checkpoint if it is validly signed (and, with a proof, proven to be extended)."""
    from hogo.crypto import checkpoint as notes

    try:
        old = notes.verify_note(note, key_name, public_key, origin=key_name)
    except notes.CheckpointError as exc:
        report.add(FORKED, None, f"{source}'s checkpoint is not validly signed by this log ({exc})")
        return None
    if old.size > latest.size:
        report.add(ROLLED_BACK, latest.size, f"{source} holds a checkpoint of size {old.size}, larger than this "
                                             f"log's {latest.size}: the log was rolled back or truncated")
        return None
    if proof_hex is None:
        return old
    try:
        proof = [bytes.fromhex(h) for h in proof_hex]
    except ValueError:
        proof = []
    if not merkle.verify_consistency(old.size, latest.size, old.root, latest.root, proof):
        report.add(FORKED, old.size, f"the log of size {latest.size} does not extend {source}'s checkpoint of "
                                     f"size {old.size}")
        return None
    report.checkpoints_verified += 1
    return old

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

``verify_bundle`` checks an exported bundle offline with nothing but the log's public key.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Connection, Engine, select

from hogo.crypto import checkpoint as notes
from hogo.domain import merkle
from hogo.domain.auditlog import TILE_HEIGHT, EntryFormatError, decode, entry_seq, format_ts
from hogo.store.db import read_snapshot
from hogo.store.models import AuditCheckpoint, AuditEvent, AuditHead, AuditNode

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


def _perfect_root(hashes: list[bytes]) -> bytes:
    """The root of a complete subtree from its 2^k leaves, level by level (faster than a stack)."""
    sha = hashlib.sha256
    while len(hashes) > 1:
        it = iter(hashes)
        hashes = [sha(b"\x01" + a + b).digest() for a, b in zip(it, it, strict=True)]
    return hashes[0]


class _Tree:
    """The tree over streamed leaves: 256-leaf blocks hashed whole, their roots stacked above."""

    def __init__(self) -> None:
        self.block: list[bytes] = []
        self.upper = _Stack(base=TILE_HEIGHT)
        self.blocks = 0

    def add(self, leaf: bytes) -> bytes | None:
        """Adds a leaf; returns the block's root when this leaf completes a block."""
        block = self.block
        block.append(leaf)
        if len(block) < _TILE:
            return None
        root = _perfect_root(block)
        self.block = []
        self.upper.push(root)
        self.blocks += 1
        return root

    def root(self) -> bytes:
        hashes = [h for _, h in self.upper.stack]
        n = len(self.block)
        hashes += [_perfect_root(self.block[idx << lv:(idx + 1) << lv]) for lv, idx in merkle.complete_subtrees(0, n)]
        return merkle.fold_right(hashes) if hashes else merkle.EMPTY_ROOT


# ----------------------------------------------------------------------------- the database


@dataclasses.dataclass(frozen=True)
class SignedCheckpoint:
    source: str  # "database", "sink file:…", "remembered"
    note: str
    cp: notes.Checkpoint


def _checked(report: Report, source: str, note: str, key_name: str, public_key: Ed25519PublicKey,
             ) -> SignedCheckpoint | None:
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
    report = Report()
    with read_snapshot(engine) as conn:
        _verify(conn, report, key_name, public_key, list(external), deep, progress)
    return report


def _verify(conn: Connection, report: Report, key_name: str, public_key: Ed25519PublicKey,
            external: list[tuple[str, str]], deep: bool, progress: Callable[[int, int], None] | None) -> None:
    ev: Any = AuditEvent.__table__
    head = conn.execute(select(AuditHead.size).where(AuditHead.id == 1)).scalar()
    internal: list[SignedCheckpoint | None] = []
    for size, note in conn.execute(select(AuditCheckpoint.size, AuditCheckpoint.note).order_by(AuditCheckpoint.size)):
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
    expired_ranges: list[tuple[int, int]] = []
    columns = [ev.c.seq, ev.c.entry, ev.c.leaf_hash, ev.c.expired_at]
    if deep:
        columns += [ev.c.ts, ev.c.event, ev.c.outcome, ev.c.reason, ev.c.actor_id, ev.c.actor_name,
                    ev.c.subject_user_id, ev.c.target, ev.c.file_code, ev.c.purpose, ev.c.record_count,
                    ev.c.client_addr, ev.c.session_id, ev.c.details]
    total = int(head or 0)
    streamed = conn.execution_options(stream_results=True, yield_per=10_000)
    if deep:  # typed values, to compare with the entry
        rows = streamed.execute(select(*columns).order_by(ev.c.seq))
    else:  # plain rows from the driver: the fast path for the hashes and indices alone
        rows = streamed.exec_driver_sql("SELECT seq, entry, leaf_hash, expired_at FROM audit_events ORDER BY seq")
    tree = _Tree()
    sizes = sorted(by_size)
    roots_at: dict[int, bytes] = {}
    si = 0
    while si < len(sizes) and sizes[si] == 0:
        roots_at[0] = merkle.EMPTY_ROOT
        si += 1
    next_size = sizes[si] if si < len(sizes) else -1
    position = 0
    reported_gap = False
    sha = hashlib.sha256
    for part in rows.partitions():
        for row in part:
            seq, entry, leaf = row[0], row[1], bytes(row[2])
            if seq != position and not reported_gap:
                report.add(MISSING if seq > position else INSERTED, position,
                           f"entry {position} is missing (the next stored entry is {seq})" if seq > position
                           else f"entry {seq} appears again at position {position}")
                reported_gap = True
            if entry is None:
                if row[3] is None:
                    report.add(MODIFIED, seq, f"entry {seq} has no payload and no expiry: it was erased")
                else:
                    report.expired += 1
                    expired_ranges.append((seq, seq + 1))
            else:
                entry = bytes(entry)
                if sha(b"\x00" + entry).digest() != leaf:
                    report.add(MODIFIED, seq, f"entry {seq} does not match its leaf hash: it was changed")
                if not entry.startswith(b"hogo-log/1 %d " % position):
                    _misplaced(report, entry, position, total)
                if deep:
                    _compare_columns(report, seq, entry, row)
            position += 1
            block_root = tree.add(leaf)
            if block_root is not None:
                _check_nodes(report, stored_nodes, [(TILE_HEIGHT, tree.blocks - 1, block_root),
                                                    *tree.upper.completed])
                tree.upper.completed.clear()
            if position == next_size:
                roots_at[position] = tree.root()
                while si < len(sizes) and sizes[si] == position:
                    si += 1
                next_size = sizes[si] if si < len(sizes) else -1
        if progress is not None:
            progress(position, total)
    report.size = position
    report.entries_checked = position
    if head is None:
        report.add(MODIFIED, None, "the log's head is missing")
    elif int(head) != position:
        kind = TRUNCATED if int(head) > position else INSERTED
        report.add(kind, min(position, int(head)),
                   f"the head counts {head} entries but {position} are stored")
    _check_expiry_records(conn, report, expired_ranges)
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


def _check_nodes(report: Report, stored_nodes: dict[tuple[int, int], bytes],
                 computed: list[tuple[int, int, bytes]]) -> None:
    for level, idx, h in computed:
        stored = stored_nodes.get((level, idx))
        if stored is None:
            report.add(MISSING, ((idx + 1) << level) - 1, f"tree node {level}/{idx} is missing")
        elif stored != h:
            report.add(MODIFIED, idx << level, f"tree node {level}/{idx} (entries {idx << level}–"
                       f"{((idx + 1) << level) - 1}) differs from the entries")


def _misplaced(report: Report, entry: bytes, position: int, total: int) -> None:
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


def _compare_columns(report: Report, seq: int, entry: bytes, row: Any) -> None:
    try:
        _, e = decode(entry)
    except EntryFormatError as exc:
        report.add(MODIFIED, seq, f"entry {seq} is malformed ({exc})")
        return
    (ts, event, outcome, reason, actor_id, actor_name, subject, target, file_code, purpose, record_count,
     client, session, details) = row[4:]
    expected = (format_ts(e.ts), e.event, e.outcome, e.reason, e.actor_id, e.actor, e.subject_user_id, e.target,
                e.file, e.purpose, len(set(e.records)), e.client, e.session, e.details)
    actual = (format_ts(ts), event, outcome, reason, actor_id, actor_name, subject, target, file_code, purpose,
              record_count, client, session, details)
    if expected != actual:
        names = ("ts", "event", "outcome", "reason", "actor_id", "actor_name", "subject_user_id", "target",
                 "file_code", "purpose", "record_count", "client_addr", "session_id", "details")
        changed = [n for n, a, b in zip(names, expected, actual, strict=True) if a != b]
        report.add(MODIFIED, seq, f"entry {seq}'s indexed columns ({', '.join(changed)}) differ from the entry")


def _check_expiry_records(conn: Connection, report: Report, expired: list[tuple[int, int]]) -> None:
    """A payload may be missing only where a retention run recorded removing it."""
    if not expired:
        return
    covered: list[tuple[int, int]] = []
    for entry in conn.execute(select(AuditEvent.entry).where(AuditEvent.event == EXPIRED_EVENT)).scalars():
        if entry is None:
            continue
        _, e = decode(bytes(entry))
        covered.extend((int(a), int(b)) for a, b in (e.details or {}).get("ranges", []))
    for a, _ in expired:
        if not any(lo <= a < hi for lo, hi in covered):
            report.add(MODIFIED, a, f"entry {a}'s payload was removed without a recorded retention run")


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

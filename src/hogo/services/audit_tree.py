"""The log's Merkle tree in the database: roots, proofs and signed checkpoints (SEC-107(3), ANON-12,
MLIT-9.5.8).

* ``TreeReader`` gives any node of the RFC 9162 tree from the leaves and the stored 256-wide subtree
  roots (``audit_nodes``), so a proof over ten million entries costs a few small range reads.
* ``checkpoint`` signs (origin, size, root) with the log's Ed25519 key — derived from the instance key
  file, which is where the other keys live — stores the signed note and sends it to the off-host
  sinks (``settings.audit_sinks``). A verifier that kept an earlier checkpoint, or that reads the
  sinks, detects a truncated, rolled-back or forked log.
* ``require_anchored`` is the guard's fail-closed check: with sinks configured, data access stops
  when the log has gone unanchored longer than the configured bounds.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from sqlalchemy import Connection, Table, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from hogo.bootstrap import Hogo
from hogo.crypto import checkpoint as notes
from hogo.domain import merkle
from hogo.domain.auditlog import TILE_HEIGHT
from hogo.domain.events import Event, Outcome
from hogo.errors import HogoError
from hogo.services import audit, delivery
from hogo.store.db import read_snapshot
from hogo.store.models import AuditCheckpoint, AuditEvent, AuditHead, AuditNode

log = logging.getLogger("hogo.audit")

_EVENTS: Table = AuditEvent.__table__  # type: ignore[assignment]
_NODES: Table = AuditNode.__table__  # type: ignore[assignment]
_HEAD: Table = AuditHead.__table__  # type: ignore[assignment]
_CHECKPOINTS: Table = AuditCheckpoint.__table__  # type: ignore[assignment]
_CACHE_LIMIT = 200_000  # complete nodes never change: a process keeps the ones it has computed
_TILE = 1 << TILE_HEIGHT


class LogUnavailable(HogoError):
    status = 503
    code = "log_unavailable"


# ------------------------------------------------------------------------------------- reading


class TreeReader:
    """Nodes of the tree over the entries in the database, as of the connection's snapshot."""

    def __init__(self, conn: Connection, cache: dict[tuple[int, int], bytes] | None = None) -> None:
        self.conn = conn
        self.cache = cache if cache is not None else {}
        self._blocks: dict[tuple[int, int], list[list[bytes]]] = {}

    def size(self) -> int:
        return int(self.conn.execute(select(_HEAD.c.size).where(_HEAD.c.id == 1)).scalar_one())

    def level_hashes(self, level: int, a: int, b: int) -> list[bytes]:
        """Hashes of the complete nodes at a stored level (0 = leaves, 8, 16 …) for indices [a, b)."""
        hashes = audit.read_hashes(self.conn, level, a, b)
        if len(hashes) != b - a:
            raise LogUnavailable(f"the log is missing hashes at level {level} in [{a}, {b})")
        return hashes

    def node(self, level: int, idx: int) -> bytes:
        """The root of the complete subtree over leaves [idx·2^level, (idx+1)·2^level)."""
        key = (level, idx)
        hit = self.cache.get(key)
        if hit is not None:
            return hit
        base = level - level % TILE_HEIGHT
        up = level - base
        first = idx << up  # the subtree's first index at the stored level ``base``
        levels = self._block_tree(base, first - first % _TILE)
        at = (first % _TILE) >> up
        if up >= len(levels) or at >= len(levels[up]):
            raise LogUnavailable(f"the log is missing hashes at level {base} in [{first}, {first + (1 << up)})")
        value = levels[up][at]
        if len(self.cache) >= _CACHE_LIMIT:
            self.cache.clear()
        self.cache[key] = value
        return value

    def _block_tree(self, level: int, start: int) -> list[list[bytes]]:
        """The complete subtrees inside one 256-wide block at a stored level, read and hashed once per
        reader: ``[hashes, pairs, quads, …]`` (a proof's siblings below the next stored level all lie in
        the same block, and hashing the block's tree level by level costs what hashing those siblings
        one by one does, without the per-node overhead). A block cut short (the log's right edge, or
        missing hashes) has only the subtrees its hashes complete."""
        key = (level, start)
        tree = self._blocks.get(key)
        if tree is None:
            row = audit.read_hashes(self.conn, level, start, start + _TILE)
            tree = [row]
            sha = hashlib.sha256
            while len(row) > 1:
                row = [sha(b"\x01" + row[i] + row[i + 1]).digest() for i in range(0, len(row) - 1, 2)]
                tree.append(row)
            self._blocks[key] = tree
        return tree

    def subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for ranges whose start is aligned (all that proofs and roots ask for)."""
        return merkle.fold_right([self.node(level, idx) for level, idx in merkle.complete_subtrees(start, end)])

    def root(self, size: int) -> bytes:
        return self.subtree(0, size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return merkle.inclusion_proof(index, size, self.subtree)

    def consistency_proof(self, old_size: int, new_size: int) -> list[bytes]:
        return merkle.consistency_proof(old_size, new_size, self.subtree)


# ------------------------------------------------------------------------------------- signing


@dataclasses.dataclass(frozen=True)
class LogKey:
    """The log's signing key: Ed25519 (CRYPTREC-listed EdDSA), derived from the instance key file."""

    private: Ed25519PrivateKey
    public: Ed25519PublicKey
    name: str  # also the checkpoints' origin line

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)

    @property
    def verifier_key(self) -> str:
        return notes.public_key_text(self.name, self.public)


def log_key(hogo: Hogo) -> LogKey:
    private = Ed25519PrivateKey.from_private_bytes(hogo.keyring.subkey("audit-log/ed25519/v1"))
    public = private.public_key()
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    digest = hashlib.sha256(public.public_bytes(Encoding.Raw, PublicFormat.Raw)).hexdigest()[:16]
    return LogKey(private, public, f"hogo.log/{digest}")


# ----------------------------------------------------------------------------------- checkpoints


@dataclasses.dataclass(frozen=True)
class StoredCheckpoint:
    size: int
    root: bytes
    ts: dt.datetime
    note: str
    anchored_at: dt.datetime | None


def latest_checkpoint(conn: Connection) -> StoredCheckpoint | None:
    row = conn.execute(select(_CHECKPOINTS).order_by(_CHECKPOINTS.c.size.desc()).limit(1)).mappings().first()
    return None if row is None else StoredCheckpoint(row["size"], bytes(row["root"]), row["ts"], row["note"],
                                                     row["anchored_at"])


def checkpoint(hogo: Hogo, *, anchor: bool = True) -> StoredCheckpoint:
    """Sign the log as it stands, store the checkpoint and send it to the sinks."""
    key = log_key(hogo)
    with read_snapshot(hogo.engine) as conn:  # the head and the leaves it counts
        tree = TreeReader(conn, hogo.tree_cache)
        size = tree.size()
        root = tree.root(size)
    now = hogo.clock.now()
    cp = notes.Checkpoint(origin=key.name, size=size, root=root, time=now)
    note = notes.sign_checkpoint(cp, key.name, key.sign, key.public)
    try:
        with hogo.unit_of_work() as db:
            db.execute(insert(_CHECKPOINTS).values(size=size, root=root, ts=now, note=note, anchored_at=None))
        stored = StoredCheckpoint(size, root, now, note, None)
    except IntegrityError:  # another process signed this size first: use theirs
        with hogo.unit_of_work(readonly=True) as db:
            row = db.execute(select(_CHECKPOINTS).where(_CHECKPOINTS.c.size == size)).mappings().one()
        stored = StoredCheckpoint(size, bytes(row["root"]), row["ts"], row["note"], row["anchored_at"])
        if stored.root != root:
            raise LogUnavailable("two checkpoints of one size disagree: the log has forked") from None
    if anchor and stored.anchored_at is None:
        stored = anchor_checkpoint(hogo, stored)
    return stored


def anchor_checkpoint(hogo: Hogo, cp: StoredCheckpoint) -> StoredCheckpoint:
    """Send the signed note to every off-host sink; mark it anchored when all of them took it."""
    sinks = [delivery.parse_sink(s) for s in hogo.settings.audit_sinks]
    if not sinks:
        return cp
    results = delivery.deliver_all(sinks, f"hogo checkpoint {cp.size}", cp.note, kind="checkpoint")
    failed = [(name, err) for name, err in results if err is not None]
    if failed:
        for name, err in failed:
            log.warning("checkpoint %d not anchored to %s: %s", cp.size, name, err)
        _note_anchor_failure(hogo, cp, failed)
        return cp
    now = hogo.clock.now()
    with hogo.unit_of_work() as db:
        db.execute(update(_CHECKPOINTS).where(_CHECKPOINTS.c.size == cp.size).values(anchored_at=now))
    return dataclasses.replace(cp, anchored_at=now)


_FAILURE_NOTE_INTERVAL_S = 60.0


def _note_anchor_failure(hogo: Hogo, cp: StoredCheckpoint, failed: Sequence[tuple[str, str | None]]) -> None:
    """Record the failure (at most once a minute per process: the checkpointer retries every second)."""
    last = hogo.extras.get("anchor_failure_noted", 0.0)
    if time.monotonic() - last < _FAILURE_NOTE_INTERVAL_S:
        return
    hogo.extras["anchor_failure_noted"] = time.monotonic()
    from hogo.services import audit
    from hogo.services.audit import RequestContext

    with hogo.unit_of_work() as db:
        audit.record(db, now=hogo.clock.now(), event=Event.LOG_ANCHOR_FAILED, outcome=Outcome.FAILURE,
                     ctx=RequestContext(), details={"size": cp.size, "sinks": [n for n, _ in failed]},
                     reason="; ".join(str(e) for _, e in failed)[:200])


def checkpoint_if_due(hogo: Hogo) -> StoredCheckpoint | None:
    """Sign (and anchor) a checkpoint when one is due: none yet, every N entries or T seconds while
    the log grows; or anchor the latest again when the sinks have not taken it yet."""
    s = hogo.settings
    with hogo.engine.connect() as conn:
        size = TreeReader(conn).size()
        last = latest_checkpoint(conn)
    if last is None:
        return checkpoint(hogo)
    unanchored = bool(s.audit_sinks) and last.anchored_at is None
    if size == last.size:
        return anchor_checkpoint(hogo, last) if unanchored else None
    age = (hogo.clock.now() - last.ts).total_seconds()
    if unanchored or size - last.size >= s.audit_checkpoint_entries or age >= s.audit_checkpoint_seconds:
        return checkpoint(hogo)
    return None


# ------------------------------------------------------------------------------------ fail closed


@dataclasses.dataclass
class _AnchorState:
    checked_at: float = 0.0
    problem: str | None = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


_ANCHOR_RECHECK_S = 1.0


def require_anchored(hogo: Hogo) -> None:
    """Refuse data access when off-host anchoring has failed for longer than the configured bounds
    (SEC-107(3)): a log that cannot be anchored cannot prove it was not rolled back."""
    s = hogo.settings
    if not s.audit_sinks:
        return
    state: _AnchorState = hogo.extras.setdefault("anchor_state", _AnchorState())
    now = time.monotonic()
    if now - state.checked_at >= _ANCHOR_RECHECK_S:
        with state.lock:
            if now - state.checked_at >= _ANCHOR_RECHECK_S:
                state.problem = _anchoring_problem(hogo)
                state.checked_at = now
    if state.problem:
        raise LogUnavailable(f"data access is suspended: {state.problem}", requirement="SEC-107")


def _anchoring_problem(hogo: Hogo) -> str | None:
    s = hogo.settings
    with hogo.engine.connect() as conn:
        size = TreeReader(conn).size()
        row = conn.execute(
            select(_CHECKPOINTS.c.size, _CHECKPOINTS.c.anchored_at).where(_CHECKPOINTS.c.anchored_at.is_not(None))
            .order_by(_CHECKPOINTS.c.size.desc()).limit(1)).first()
        first_unanchored = conn.execute(
            select(func.min(_EVENTS.c.ts)).where(_EVENTS.c.seq >= (row.size if row else 0))).scalar()
    anchored = row.size if row else 0
    if size - anchored > s.audit_max_unanchored_entries:
        return f"{size - anchored} log entries are not anchored off-host (limit {s.audit_max_unanchored_entries})"
    if first_unanchored is not None:
        lag = (hogo.clock.now() - first_unanchored).total_seconds()
        if lag > s.audit_max_unanchored_s:
            return f"the log has not been anchored off-host for {int(lag)} s (limit {s.audit_max_unanchored_s} s)"
    return None


def proof_for(conn: Connection, index: int, size: int,
              cache: dict[tuple[int, int], bytes] | None = None) -> dict[str, Any]:
    """An inclusion proof of entry ``index`` in the tree of ``size``."""
    tree = TreeReader(conn, cache)
    leaf = tree.level_hashes(0, index, index + 1)[0]
    return {"index": index, "size": size, "leaf_hash": leaf, "proof": tree.inclusion_proof(index, size),
            "root": tree.root(size)}


def to_hex(hashes: Sequence[bytes]) -> list[str]:
    return [h.hex() for h in hashes]

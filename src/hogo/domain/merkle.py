"""Merkle tree hashing as RFC 9162 §2.1 defines it (the tamper-evident log, SEC-107(3), MLIT-9.5.8).

leaf = SHA-256(0x00 ‖ entry), node = SHA-256(0x01 ‖ left ‖ right); the tree over n leaves splits at
the largest power of two smaller than n. Inclusion proofs (§2.1.3) and consistency proofs (§2.1.4) are generated
from a ``subtree(start, end)`` callable the caller backs with stored nodes, and verified with the RFC's iterative
algorithms; verifiers answer False, never raise, for malformed proofs. Pure functions: no I/O, no clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

HASH_SIZE = 32
_sha256 = hashlib.sha256
EMPTY_ROOT = _sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return _sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(b"\x01" + left + right).digest()


def split_point(n: int) -> int:
    """The largest power of two strictly smaller than ``n`` (n ≥ 2)."""
    if n < 2:
        raise ValueError("split_point needs at least two leaves")
    return 1 << ((n - 1).bit_length() - 1)


def root_of_leaves(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) from the leaf hashes, without recursion (a stack of complete subtrees)."""
    if not leaves:
        return EMPTY_ROOT
    stack: list[tuple[int, bytes]] = []  # (height, hash) of complete subtrees, left to right
    for h in leaves:
        height, node = 0, h
        while stack and stack[-1][0] == height:
            node = node_hash(stack.pop()[1], node)
            height += 1
        stack.append((height, node))
    # Fold the incomplete right edge: right-most (smallest) subtrees combine first.
    node = stack.pop()[1]
    while stack:
        node = node_hash(stack.pop()[1], node)
    return node


def complete_subtrees(start: int, end: int) -> list[tuple[int, int]]:
    """The range [start, end) as aligned complete subtrees ``(level, index)``, left to right.

    Aligned means a subtree of level l covers leaves [index·2^l, (index+1)·2^l). Any range whose
    start is aligned to the range's largest subtree decomposes this way; MTH of such a range folds
    these from the right."""
    out: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        level = (pos & -pos).bit_length() - 1 if pos else (end - pos).bit_length() - 1
        while (1 << level) > end - pos:
            level -= 1
        out.append((level, pos >> level))
        pos += 1 << level
    return out


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """Combine the hashes of a range's complete subtrees (left to right) into the range's MTH."""
    if not hashes:
        return EMPTY_ROOT
    node = hashes[-1]
    for h in reversed(hashes[:-1]):
        node = node_hash(h, node)
    return node


# --- Proofs (RFC 9162 §2.1.3, §2.1.4) -------------------------------------------------------------------------------

Subtree = Callable[[int, int], bytes]
"""``subtree(start, end)`` returns MTH(D[start:end]). The proof generators below only ever ask for two kinds of range,
so a store that keeps aligned complete subtrees can answer every call:

* an aligned complete subtree: ``end - start`` is a power of two 2^l and ``start`` is a multiple of 2^l;
* a right-edge range ``[start, size)`` of the tree the proof is for (``size`` the tree size, or ``new_size`` for a
  consistency proof), where ``start`` is a multiple of the smallest power of two ≥ ``size - start``; such a range is
  ``complete_subtrees(start, size)`` folded with ``fold_right``.
"""

_MAX_PROOF = 128  # a bound on work for hostile input; no tree of fewer than 2^64 leaves has a proof over 65 hashes


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes | bytearray) and len(value) == HASH_SIZE


def _is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _hashes(proof: object) -> list[bytes] | None:
    """The proof as a list of 32-byte hashes, or None when it is not one."""
    if isinstance(proof, str | bytes | bytearray | memoryview):
        return None
    try:
        items = list(proof)  # type: ignore[call-overload]
    except TypeError:
        return None
    if len(items) > _MAX_PROOF or not all(_is_hash(h) for h in items):
        return None
    return [bytes(h) for h in items]


def _fetch(subtree: Subtree, start: int, end: int) -> bytes:
    h = subtree(start, end)
    if not _is_hash(h):
        raise ValueError(f"subtree({start}, {end}) did not return a {HASH_SIZE}-byte hash")
    return bytes(h)


def subtree_from_leaves(leaves: Sequence[bytes]) -> Subtree:
    """A ``subtree`` callable over leaf hashes held in memory (tests, small trees): MTH of any slice."""

    def subtree(start: int, end: int) -> bytes:
        if not 0 <= start < end <= len(leaves):
            raise ValueError(f"range [{start}, {end}) is not a non-empty range of {len(leaves)} leaves")
        return root_of_leaves(leaves[start:end])

    return subtree


def inclusion_proof(index: int, size: int, subtree: Subtree) -> list[bytes]:
    """The audit path PATH(index, D[size]) of RFC 9162 §2.1.3.1, nearest the leaf first (SEC-107(3), MLIT-9.5.8).

    PATH(m, D[n]) is empty for n = 1; otherwise with k = split_point(n) it is PATH(m, D[0:k]) : MTH(D[k:n]) when
    m < k and PATH(m − k, D[k:n]) : MTH(D[0:k]) when m ≥ k. Walked from the root, every sibling asked of ``subtree``
    is either the aligned complete left half or the right half, which is complete unless it runs to the tree's right
    edge (see ``Subtree``). Raises ValueError unless 0 ≤ index < size."""
    if not (_is_count(index) and _is_count(size) and index < size):
        raise ValueError(f"no leaf {index} in a tree of size {size}")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        mid = start + split_point(end - start)
        if index < mid:
            path.append(_fetch(subtree, mid, end))
            end = mid
        else:
            path.append(_fetch(subtree, start, mid))
            start = mid
    path.reverse()
    return path


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes) -> bool:
    """True when ``proof`` shows leaf hash ``leaf`` at ``index`` in the tree of ``size`` leaves whose root is ``root``.

    RFC 9162 §2.1.3.2, step for step (SEC-107(3), MLIT-9.5.8). False (never an exception) for index ≥ size, a proof
    one element too long or too short, or any hash that is not 32 bytes. The verifier proves only that ``root``
    commits to ``leaf`` at ``index``; that ``root`` is the tree head of ``size`` is what a signed checkpoint binds."""
    path = _hashes(proof)
    if path is None or not (_is_count(index) and _is_count(size) and _is_hash(leaf) and _is_hash(root)):
        return False
    if index >= size:  # step 1
        return False
    fn, sn = index, size - 1  # step 2
    r = bytes(leaf)  # step 3
    for p in path:  # step 4
        if sn == 0:  # 4a: more elements than the path has levels
            return False
        if fn & 1 or fn == sn:  # 4b
            r = node_hash(p, r)
            if not fn & 1:  # the right edge: skip the levels where this node has no sibling
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1  # 4c
        sn >>= 1
    return sn == 0 and r == root  # step 5: too few elements leave sn > 0


def consistency_proof(old_size: int, new_size: int, subtree: Subtree) -> list[bytes]:
    """PROOF(old_size, D[new_size]) of RFC 9162 §2.1.4.1 (SEC-107(3), MLIT-9.5.8).

    PROOF(m, D[n]) = SUBPROOF(m, D[n], true); SUBPROOF(m, D[m], true) is empty, SUBPROOF(m, D[m], false) is
    {MTH(D[m])}; for m < n with k = split_point(n) it is SUBPROOF(m, D[0:k], b) : MTH(D[k:n]) when m ≤ k and
    SUBPROOF(m − k, D[k:n], false) : MTH(D[0:k]) when m > k. Every range asked of ``subtree`` is an aligned complete
    subtree or runs to the right edge of the new tree (see ``Subtree``). The proof is empty when old_size is 0 or equal
    to new_size; raises ValueError unless 0 ≤ old_size ≤ new_size."""
    if not (_is_count(old_size) and _is_count(new_size) and old_size <= new_size):
        raise ValueError(f"no consistency proof from size {old_size} to size {new_size}")
    if old_size in (0, new_size):
        return []
    path: list[bytes] = []
    start, end, whole = 0, new_size, True  # the node [start, end) of the new tree; whole = the b of SUBPROOF
    while True:
        if old_size == end:  # m = n: the old tree's last complete subtree
            if not whole:
                path.append(_fetch(subtree, start, end))
            break
        mid = start + split_point(end - start)
        if old_size <= mid:
            path.append(_fetch(subtree, mid, end))
            end = mid
        else:
            path.append(_fetch(subtree, start, mid))
            start, whole = mid, False
    path.reverse()
    return path


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """True when ``proof`` shows the tree (old_size, old_root) is a prefix of the tree (new_size, new_root).

    RFC 9162 §2.1.4.2, step for step, for 0 < old_size < new_size (SEC-107(3), MLIT-9.5.8). The RFC defines proofs
    only for that range; the edges are: old_size > new_size is False; old_size == new_size holds only with an empty
    proof and equal roots; old_size == 0 holds only with an empty proof and old_root the empty tree's root
    SHA-256("") (every tree extends the empty tree, but no other hash is the root of one). False, never an exception,
    for a malformed proof: wrong length either way, or any hash that is not 32 bytes."""
    path = _hashes(proof)
    if path is None or not (_is_count(old_size) and _is_count(new_size) and _is_hash(old_root) and _is_hash(new_root)):
        return False
    if old_size > new_size:
        return False
    if old_size == 0:
        return not path and old_root == EMPTY_ROOT
    if old_size == new_size:
        return not path and old_root == new_root
    if not path:  # step 1
        return False
    if old_size & (old_size - 1) == 0:  # step 2: the old tree is one complete subtree, its root is the proof's seed
        path.insert(0, bytes(old_root))
    fn, sn = old_size - 1, new_size - 1  # step 3
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    # step 7
    return sn == 0 and fr == old_root and sr == new_root

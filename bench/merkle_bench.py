"""What an audit-log proof costs at production scale (SEC-107(3), MLIT-9.5.8): p50/p99 time to produce and to verify
RFC 9162 inclusion (and consistency) proofs over a tree of 10 million leaves.

The node store is the shape the log keeps: leaf hashes, plus "tiles", the roots of the complete subtrees every 8
levels (levels 8, 16, 24, ...). ``subtree(start, end)`` splits the range into aligned complete subtrees and derives
each from the nearest stored level below it, so one node costs at most 2^7 − 1 hashes. The leaf hashes are random
32-byte values (hashing 10 million entries would only measure SHA-256); everything above them is real hashing, so
the proofs verify against the tree's real root.

Standalone: ``.venv/bin/python bench/merkle_bench.py [size]``; ``bench_proofs()`` returns the figures as well.
"""

from __future__ import annotations

import hashlib
import random
import sys
import time
from collections.abc import Sequence

from hogo.domain.merkle import (
    HASH_SIZE,
    complete_subtrees,
    consistency_proof,
    fold_right,
    inclusion_proof,
    root_of_leaves,
    verify_consistency,
    verify_inclusion,
)

TILE_BITS = 8  # a stored level every 8 levels: a tile is 256 nodes of the level below
_NODE_PREFIX = hashlib.sha256(b"\x01")


def _group_roots(below: bytearray, groups: int, width: int) -> bytearray:
    """The roots of ``groups`` consecutive aligned groups of ``width`` (a power of two) nodes of one level."""
    out = bytearray()
    view = memoryview(below)
    prefix = _NODE_PREFIX
    for g in range(groups):
        layer = view[g * width * HASH_SIZE : (g + 1) * width * HASH_SIZE]
        while len(layer) > HASH_SIZE:
            joined = bytearray()
            for off in range(0, len(layer), 2 * HASH_SIZE):
                h = prefix.copy()
                h.update(layer[off : off + 2 * HASH_SIZE])
                joined += h.digest()
            layer = memoryview(joined)
        out += layer
    return out


class TileStore:
    """Leaf hashes and every 8th level of complete-subtree roots, in flat bytearrays (32 bytes per node)."""

    def __init__(self, leaves: bytearray) -> None:
        if len(leaves) % HASH_SIZE:
            raise ValueError("leaf hashes must be a multiple of 32 bytes")
        self.size = len(leaves) // HASH_SIZE
        self.levels: dict[int, bytearray] = {0: leaves}
        level = 0
        while (count := len(self.levels[level]) // HASH_SIZE >> TILE_BITS) > 0:
            self.levels[level + TILE_BITS] = _group_roots(self.levels[level], count, 1 << TILE_BITS)
            level += TILE_BITS

    def leaf(self, index: int) -> bytes:
        return bytes(self.levels[0][index * HASH_SIZE : (index + 1) * HASH_SIZE])

    def node(self, level: int, index: int) -> bytes:
        """The root of the complete subtree at ``level`` and ``index``: leaves [index·2^level, (index+1)·2^level)."""
        base = level - level % TILE_BITS
        span = level - base
        stored = self.levels[base]
        first = index << span
        if (first + (1 << span)) * HASH_SIZE > len(stored):
            raise ValueError(f"node ({level}, {index}) is not a complete subtree of {self.size} leaves")
        if span == 0:
            return bytes(stored[first * HASH_SIZE : (first + 1) * HASH_SIZE])
        group = bytearray(stored[first * HASH_SIZE : (first + (1 << span)) * HASH_SIZE])
        return bytes(_group_roots(group, 1, 1 << span))

    def subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]) for the ranges proof generation asks for (aligned complete or right-edge)."""
        return fold_right([self.node(level, index) for level, index in complete_subtrees(start, end)])


def build_store(size: int, seed: int = 9162) -> TileStore:
    """A store over ``size`` random leaf hashes (reproducible from ``seed``)."""
    rng = random.Random(seed)
    leaves = bytearray()
    chunk = 1 << 20  # randbytes takes a C int of bits
    for done in range(0, size, chunk):
        leaves += rng.randbytes(min(chunk, size - done) * HASH_SIZE)
    return TileStore(leaves)


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    k = (len(ordered) - 1) * q / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def _self_check() -> None:
    """The tile store answers exactly what hashing the leaves answers (a wrong store would make fast, wrong proofs)."""
    store = build_store(70_000, seed=1)
    leaves = [store.leaf(i) for i in range(store.size)]
    rng = random.Random(2)
    for start, end in [(0, store.size), (65_536, store.size), (0, 65_536), (256, 512), (69_632, store.size)]:
        assert store.subtree(start, end) == root_of_leaves(leaves[start:end]), (start, end)
    for _ in range(20):
        level = rng.randrange(0, 17)
        index = rng.randrange(0, store.size >> level)
        assert store.node(level, index) == root_of_leaves(leaves[index << level : (index + 1) << level])


def bench_proofs(size: int = 10_000_000, samples: int = 1000, seed: int = 9162) -> dict[str, float]:
    """Build the store for ``size`` leaves, then time producing and verifying proofs for ``samples`` random leaves
    (and as many random old tree sizes); print and return the figures (milliseconds unless named otherwise)."""
    _self_check()
    t0 = time.perf_counter()
    store = build_store(size, seed)
    build_s = time.perf_counter() - t0
    root = store.subtree(0, size)

    rng = random.Random(seed + 1)
    prove: list[float] = []
    check: list[float] = []
    lengths: list[int] = []
    for _ in range(samples):
        index = rng.randrange(size)
        a = time.perf_counter()
        proof = inclusion_proof(index, size, store.subtree)
        b = time.perf_counter()
        ok = verify_inclusion(index, size, store.leaf(index), proof, root)
        c = time.perf_counter()
        if not ok:
            raise AssertionError(f"inclusion proof of leaf {index} did not verify")
        prove.append(b - a)
        check.append(c - b)
        lengths.append(len(proof))

    c_prove: list[float] = []
    c_check: list[float] = []
    for _ in range(samples):
        old = rng.randrange(1, size)
        a = time.perf_counter()
        old_root = store.subtree(0, old)  # the verifier has this from the old checkpoint: not timed as proving
        b = time.perf_counter()
        proof = consistency_proof(old, size, store.subtree)
        c = time.perf_counter()
        ok = verify_consistency(old, size, old_root, root, proof)
        d = time.perf_counter()
        if not ok:
            raise AssertionError(f"consistency proof from {old} did not verify")
        c_prove.append(c - b)
        c_check.append(d - c)

    def ms(values: list[float], q: float) -> float:
        return round(_percentile(values, q) * 1000, 3)

    results = {
        "size": float(size),
        "samples": float(samples),
        "build_s": round(build_s, 2),
        "proof_len_max": float(max(lengths)),
        "inclusion_prove_p50": ms(prove, 50),
        "inclusion_prove_p99": ms(prove, 99),
        "inclusion_verify_p50": ms(check, 50),
        "inclusion_verify_p99": ms(check, 99),
        "consistency_prove_p50": ms(c_prove, 50),
        "consistency_prove_p99": ms(c_prove, 99),
        "consistency_verify_p50": ms(c_check, 50),
        "consistency_verify_p99": ms(c_check, 99),
    }
    print(f"Merkle proofs over {size:,} leaves ({samples} random samples; store built in {build_s:.1f} s)")
    for kind in ("inclusion", "consistency"):
        for step in ("prove", "verify"):
            p50, p99 = results[f"{kind}_{step}_p50"], results[f"{kind}_{step}_p99"]
            print(f"  {kind:<11} {step:<6} p50 {p50:8.3f} ms   p99 {p99:8.3f} ms")
    print(f"  longest inclusion proof: {max(lengths)} hashes")
    return results


if __name__ == "__main__":
    bench_proofs(int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000)

"""The Merkle tree of the tamper-evident log: tree heads, inclusion and consistency proofs (SEC-107(3), MLIT-9.5.8,
ANON-12; RFC 9162 §2.1).

Three layers of evidence: known answers from the certificate-transparency test suites; a recursive reference verifier
written straight from the RFC's PATH/PROOF definitions, against which the bit-twiddling verifiers are checked
differentially; and exhaustive and property-based negative cases. A verifier that accepts a corrupted proof is the bug
these hunt, so every mutation of an honest proof that does not describe the same tree must be rejected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hogo.domain.merkle import (
    EMPTY_ROOT,
    complete_subtrees,
    consistency_proof,
    fold_right,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_of_leaves,
    split_point,
    subtree_from_leaves,
    verify_consistency,
    verify_inclusion,
)

PROPERTY = settings(max_examples=60, deadline=None, database=None)

# --- Known answers ---------------------------------------------------------------------------------------------------
# The RFC 6962 reference vectors of the certificate-transparency C++ test suite (merkle_tree_test.cc), as carried by
# github.com/transparency-dev/merkle proof/verify_test.go: eight leaf inputs, the tree heads of their prefixes of
# sizes 1..8, and inclusion (1-based leaf number there, 0-based index here) and consistency proofs.

KAT_ENTRIES = [
    bytes.fromhex(h)
    for h in ("", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f")
]
KAT_ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def _h(*hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes]


KAT_INCLUSION = [  # (index, size, proof)
    (0, 1, []),
    (
        0,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        5,
        8,
        _h(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (2, 3, _h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (
        1,
        5,
        _h(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
]

KAT_CONSISTENCY = [  # (old size, new size, proof)
    (1, 1, []),
    (
        1,
        8,
        _h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ),
    ),
    (
        6,
        8,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
    (
        2,
        5,
        _h(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ),
    ),
    (
        6,
        7,
        _h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ),
    ),
]

KAT_LEAVES = [leaf_hash(e) for e in KAT_ENTRIES]
SOME_HASH = bytes.fromhex("abacaba000000000000000000000000000000000000000000060061e00123456")


def test_empty_tree_and_leaf_and_node_hashes():
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert root_of_leaves([]) == EMPTY_ROOT
    assert KAT_LEAVES[0] == KAT_ROOTS[0]  # MTH of one entry is its leaf hash
    assert node_hash(KAT_LEAVES[0], KAT_LEAVES[1]) == KAT_ROOTS[1]


@pytest.mark.parametrize("size", range(1, 9))
def test_known_tree_heads(size):
    assert root_of_leaves(KAT_LEAVES[:size]) == KAT_ROOTS[size - 1]
    assert (
        fold_right([root_of_leaves(KAT_LEAVES[s : s + (1 << lv)]) for lv, s in _ranges(0, size)]) == KAT_ROOTS[size - 1]
    )


def _ranges(start: int, end: int) -> list[tuple[int, int]]:
    return [(level, index << level) for level, index in complete_subtrees(start, end)]


@pytest.mark.parametrize(("index", "size", "proof"), KAT_INCLUSION)
def test_known_inclusion_proofs(index, size, proof):
    assert inclusion_proof(index, size, subtree_from_leaves(KAT_LEAVES)) == proof
    assert verify_inclusion(index, size, KAT_LEAVES[index], proof, KAT_ROOTS[size - 1])
    _assert_inclusion_negatives(index, size, KAT_LEAVES, proof, KAT_ROOTS[size - 1], _kat_root, ROOTS_B[size])


@pytest.mark.parametrize(("old", "new", "proof"), KAT_CONSISTENCY)
def test_known_consistency_proofs(old, new, proof):
    assert consistency_proof(old, new, subtree_from_leaves(KAT_LEAVES)) == proof
    assert verify_consistency(old, new, KAT_ROOTS[old - 1], KAT_ROOTS[new - 1], proof)
    if old < new:
        _assert_consistency_negatives(old, new, proof, _kat_root, ROOTS_B.__getitem__, max_size=8)


def _kat_root(size: int) -> bytes:
    return KAT_ROOTS[size - 1] if 1 <= size <= 8 else EMPTY_ROOT


# --- A reference verifier, recursive, straight from RFC 9162 §2.1.3.1 and §2.1.4.1 ------------------------------------


def ref_root_from_path(m: int, n: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """Undo PATH(m, D[n]): the root the path leads to, or None when its length does not fit the tree."""
    if n == 1:
        return None if path else leaf
    if not path:
        return None
    k = split_point(n)
    *rest, last = path
    if m < k:
        sub = ref_root_from_path(m, k, leaf, rest)
        return None if sub is None else node_hash(sub, last)
    sub = ref_root_from_path(m - k, n - k, leaf, rest)
    return None if sub is None else node_hash(last, sub)


def ref_verify_inclusion(m: int, n: int, leaf: bytes, path: Sequence[bytes], root: bytes) -> bool:
    if not 0 <= m < n or any(len(h) != 32 for h in [leaf, root, *path]):
        return False
    return ref_root_from_path(m, n, leaf, path) == root


def ref_subproof(m: int, n: int, whole: bool, path: Sequence[bytes], old_root: bytes) -> tuple[bytes, bytes] | None:
    """Undo SUBPROOF(m, D[n], b): the (old, new) hashes of this subtree, or None when the length does not fit."""
    if m == n:
        if whole:
            return None if path else (old_root, old_root)
        return (path[0], path[0]) if len(path) == 1 else None
    if not path:
        return None
    k = split_point(n)
    *rest, last = path
    if m <= k:
        sub = ref_subproof(m, k, whole, rest, old_root)
        return None if sub is None else (sub[0], node_hash(sub[1], last))
    sub = ref_subproof(m - k, n - k, False, rest, old_root)
    return None if sub is None else (node_hash(last, sub[0]), node_hash(last, sub[1]))


def ref_verify_consistency(m: int, n: int, old_root: bytes, new_root: bytes, path: Sequence[bytes]) -> bool:
    if any(len(h) != 32 for h in [old_root, new_root, *path]) or not 0 <= m <= n:
        return False
    if m == 0:
        return not path and old_root == EMPTY_ROOT
    if m == n:
        return not path and old_root == new_root
    return ref_subproof(m, n, True, path, old_root) == (old_root, new_root)


# --- Trees for the exhaustive and property tests --------------------------------------------------------------------

MAX = 300
TREE_A = [leaf_hash(b"a" + i.to_bytes(4, "big")) for i in range(MAX + 2)]
TREE_B = [leaf_hash(b"b" + i.to_bytes(4, "big")) for i in range(MAX + 2)]  # another log with other entries


def _prefix_roots(leaves: Sequence[bytes]) -> list[bytes]:
    out = [EMPTY_ROOT]
    for n in range(1, len(leaves) + 1):
        out.append(root_of_leaves(leaves[:n]))
    return out


ROOTS_A = _prefix_roots(TREE_A)  # ROOTS_A[n] = MTH(TREE_A[:n])
ROOTS_B = _prefix_roots(TREE_B)
SUBTREE_A = subtree_from_leaves(TREE_A)


def _flips(proof: list[bytes]) -> Iterator[tuple[str, list[bytes]]]:
    """Every proof with exactly one bit of one element flipped."""
    for i, h in enumerate(proof):
        for bit in range(len(h) * 8):
            flipped = bytearray(h)
            flipped[bit // 8] ^= 1 << (bit % 8)
            yield f"bit {bit} of element {i}", [*proof[:i], bytes(flipped), *proof[i + 1 :]]


def _reshaped(proof: list[bytes], extras: Sequence[bytes]) -> Iterator[tuple[str, list[bytes]]]:
    """Every proof one or more elements shorter, or one element longer, or with an element resized."""
    for k in range(len(proof)):
        yield f"truncated to {k}", proof[:k]
        yield f"element {k} dropped", [*proof[:k], *proof[k + 1 :]]
        yield f"element {k} one byte short", [*proof[:k], proof[k][:-1], *proof[k + 1 :]]
        yield f"element {k} one byte long", [*proof[:k], proof[k] + b"\x00", *proof[k + 1 :]]
        yield f"element {k} empty", [*proof[:k], b"", *proof[k + 1 :]]
    if len(proof) > 1:
        yield "reversed", proof[::-1]
        yield "first two swapped", [proof[1], proof[0], *proof[2:]]
    for x in extras:
        for at in range(len(proof) + 1):
            yield f"{x.hex()[:8]} inserted at {at}", [*proof[:at], x, *proof[at:]]
    yield "trailing empty element", [*proof, b""]


def _assert_inclusion_negatives(
    index: int,
    size: int,
    leaves: Sequence[bytes],
    proof: list[bytes],
    root: bytes,
    root_of: Callable[[int], bytes],
    other_root: bytes | None = None,
) -> None:
    """Every corruption of an honest (index, size, leaf, proof, root) is rejected."""
    leaf = leaves[index]
    assert verify_inclusion(index, size, leaf, proof, root)
    wrong: list[str] = []

    def reject(desc: str, i: int, n: int, lf: bytes, p: Sequence[bytes], r: bytes) -> None:
        if verify_inclusion(i, n, lf, p, r):
            wrong.append(desc)
        if ref_verify_inclusion(i, n, lf, p, r):  # the probe itself must be a genuine corruption
            wrong.append("(reference) " + desc)

    # wrong leaf
    for j in range(len(leaves)):
        if leaves[j] != leaf:
            reject(f"leaf of index {j}", index, size, leaves[j], proof, root)
    reject("leaf hash of the entry's hash", index, size, leaf_hash(leaf), proof, root)
    reject("some hash as leaf", index, size, SOME_HASH, proof, root)
    for desc, flipped in _flips([leaf]):
        reject("leaf " + desc, index, size, flipped[0], proof, root)
    # wrong index: any other, including out of range
    for j in [*range(-1, size + 2)]:
        if j != index:
            reject(f"index {j}", j, size, leaf, proof, root)
    reject("index 2^64", 2**64, size, leaf, proof, root)
    # corrupted proof
    for desc, p in _flips(proof):
        reject(desc, index, size, leaf, p, root)
    extras = [root, leaf, bytes(32), SOME_HASH, *proof[:1], *proof[-1:]]
    for desc, p in _reshaped(proof, extras):
        reject(desc, index, size, leaf, p, root)
    # wrong root
    reject("empty tree root", index, size, leaf, proof, EMPTY_ROOT)
    reject("some root", index, size, leaf, proof, SOME_HASH)
    if size > 1:  # a one-leaf tree's root is its leaf
        reject("leaf as root", index, size, leaf, proof, leaf)
        reject("root as leaf, leaf as root", index, size, root, proof, leaf)
    for desc, flipped in _flips([root]):
        reject("root " + desc, index, size, leaf, proof, flipped[0])
    if other_root is not None:
        reject("root of another tree of this size", index, size, leaf, proof, other_root)
    # wrong size, each with its own genuine root: the proof of one tree head does not prove another
    for n in range(1, min(4 * size, len(leaves)) + 1):
        if n != size and root_of(n) != root:
            reject(f"size {n} with its root", index, n, leaf, proof, root_of(n))
    reject("size 0", index, 0, leaf, proof, EMPTY_ROOT)
    assert not wrong, f"accepted corrupted inclusion proofs of ({index}, {size}): {wrong}"

    # wrong size with this root: the verifier proves only what the root commits to; it must agree with the recursive
    # definition (see test_wrong_size_with_the_same_root_is_the_claimed_tree_shape for why it may accept)
    for n in range(0, 2 * size + 3):
        assert verify_inclusion(index, n, leaf, proof, root) == ref_verify_inclusion(index, n, leaf, proof, root), n


def _assert_consistency_negatives(
    old: int,
    new: int,
    proof: list[bytes],
    root_of: Callable[[int], bytes],
    other_root_of: Callable[[int], bytes],
    max_size: int,
) -> None:
    """Every corruption of an honest (old, new, old_root, new_root, proof) is rejected, for 0 < old < new."""
    r1, r2 = root_of(old), root_of(new)
    assert verify_consistency(old, new, r1, r2, proof)
    wrong: list[str] = []

    def reject(desc: str, m: int, n: int, a: bytes, b: bytes, p: Sequence[bytes]) -> None:
        if verify_consistency(m, n, a, b, p):
            wrong.append(desc)
        if ref_verify_consistency(m, n, a, b, p):
            wrong.append("(reference) " + desc)

    for desc, p in _flips(proof):
        reject(desc, old, new, r1, r2, p)
    for desc, p in _reshaped(proof, [r1, r2, bytes(32), SOME_HASH, proof[0], proof[-1]]):
        reject(desc, old, new, r1, r2, p)
    reject("empty proof", old, new, r1, r2, [])
    reject("swapped roots", old, new, r2, r1, proof)
    reject("swapped sizes and roots", new, old, r2, r1, proof)
    reject("swapped sizes", new, old, r1, r2, proof)
    reject("new root for both", old, new, r2, r2, proof)
    reject("old root for both", old, new, r1, r1, proof)
    for desc, flipped in _flips([r1]):
        reject("old root " + desc, old, new, flipped[0], r2, proof)
    for desc, flipped in _flips([r2]):
        reject("new root " + desc, old, new, r1, flipped[0], proof)
    reject("old root of another tree", old, new, other_root_of(old), r2, proof)
    reject("new root of another tree", old, new, r1, other_root_of(new), proof)
    reject("both roots of another tree", old, new, other_root_of(old), other_root_of(new), proof)
    reject("old size 0", 0, new, EMPTY_ROOT, r2, proof)
    reject("equal sizes", new, new, r2, r2, proof)
    # other sizes, each with its genuine root
    for m in range(1, new):
        if m != old:
            reject(f"old size {m} with its root", m, new, root_of(m), r2, proof)
            reject(f"old size {m} with old root", m, new, r1, r2, proof)
    for n in range(old + 1, max_size + 1):
        if n != new:
            reject(f"new size {n} with its root", old, n, r1, root_of(n), proof)
    assert not wrong, f"accepted corrupted consistency proofs of ({old}, {new}): {wrong}"

    # other sizes with these roots: must agree with the recursive definition
    near = {0, 1, 2, 3, old // 2, 2 * old, new // 2, 2 * new, 2 * new + 1, 1 << new.bit_length()}
    near |= {x + d for x in (old, new) for d in range(-2, 3)}
    sizes = sorted(x for x in near if x >= 0)
    for m in sizes:
        for n in sizes:
            assert verify_consistency(m, n, r1, r2, proof) == ref_verify_consistency(m, n, r1, r2, proof), (m, n)


# --- Edge cases ------------------------------------------------------------------------------------------------------


def test_inclusion_edge_cases():
    leaf = KAT_LEAVES[0]
    assert verify_inclusion(0, 1, leaf, [], leaf)  # one leaf: the leaf is the root, the path is empty
    assert not verify_inclusion(0, 1, leaf, [], SOME_HASH)
    assert not verify_inclusion(0, 1, leaf, [leaf], node_hash(leaf, leaf))
    for index, size in [(0, 0), (1, 0), (1, 1), (2, 1), (8, 8), (-1, 8)]:
        assert not verify_inclusion(index, size, leaf, [], leaf)
        assert not verify_inclusion(index, size, leaf, [], EMPTY_ROOT)
    for bad in [b"", b"\x00" * 31, b"\x00" * 33, leaf.hex().encode()]:
        assert not verify_inclusion(0, 1, bad, [], bad)
        assert not verify_inclusion(0, 1, leaf, [], bad)
        assert not verify_inclusion(0, 2, leaf, [bad], node_hash(leaf, bad))
    assert not verify_inclusion(True, 2, KAT_LEAVES[1], [KAT_LEAVES[0]], KAT_ROOTS[1])
    assert verify_inclusion(1, 2, KAT_LEAVES[1], (KAT_LEAVES[0],), KAT_ROOTS[1])  # any sequence
    assert verify_inclusion(1, 2, bytearray(KAT_LEAVES[1]), [bytearray(KAT_LEAVES[0])], bytearray(KAT_ROOTS[1]))


@pytest.mark.parametrize(
    "proof",
    [None, 3, "x" * 32, b"\x00" * 32, [None], [3], [KAT_LEAVES[0], "x"], [KAT_LEAVES[0]] * 65, [KAT_LEAVES[0]] * 200],
)
def test_malformed_proofs_are_false_not_errors(proof):
    assert not verify_inclusion(1, 2, KAT_LEAVES[1], proof, KAT_ROOTS[1])
    assert not verify_consistency(1, 2, KAT_ROOTS[0], KAT_ROOTS[1], proof)
    assert not verify_inclusion(0, 1, KAT_LEAVES[0], proof, KAT_LEAVES[0])


def test_consistency_edge_cases():
    r1, r2 = KAT_ROOTS[0], KAT_ROOTS[1]
    # equal sizes: only an empty proof between equal roots
    assert verify_consistency(1, 1, r1, r1, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(1, 1, r1, r2, [])
    assert not verify_consistency(1, 1, r1, r1, [r1])
    assert not verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT])
    assert not verify_consistency(0, 0, r1, r1, [])  # r1 is not the root of an empty tree
    # from the empty tree: an empty proof, and the old root must be the empty tree's
    assert verify_consistency(0, 1, EMPTY_ROOT, r1, [])
    assert verify_consistency(0, 8, EMPTY_ROOT, KAT_ROOTS[7], [])
    assert not verify_consistency(0, 1, EMPTY_ROOT, r1, [r1])
    assert not verify_consistency(0, 1, SOME_HASH, r1, [])
    assert not verify_consistency(0, 1, EMPTY_ROOT, b"short", [])
    # shrinking trees and negative sizes
    assert not verify_consistency(2, 1, r2, r1, [])
    assert not verify_consistency(2, 1, r2, r1, [KAT_LEAVES[1]])
    assert not verify_consistency(-1, 1, EMPTY_ROOT, r1, [])
    assert not verify_consistency(1, 2, r1, r2, [])  # a non-trivial step needs a proof
    assert not verify_consistency(1, 2, r1, r1, [])  # even between equal roots
    assert not verify_consistency(3, 8, KAT_ROOTS[7], KAT_ROOTS[7], [])
    assert verify_consistency(1, 2, r1, r2, [KAT_LEAVES[1]])
    for bad in [b"", b"\x00" * 31, b"\x00" * 33]:
        assert not verify_consistency(1, 2, bad, r2, [KAT_LEAVES[1]])
        assert not verify_consistency(1, 2, r1, bad, [KAT_LEAVES[1]])
        assert not verify_consistency(1, 1, bad, bad, [])
        assert not verify_consistency(1, 2, r1, r2, [bad])


def test_generators_refuse_impossible_requests():
    sub = subtree_from_leaves(KAT_LEAVES)
    for index, size in [(0, 0), (1, 1), (-1, 4), (8, 8)]:
        with pytest.raises(ValueError, match="no leaf"):
            inclusion_proof(index, size, sub)
    for old, new in [(2, 1), (-1, 1), (1, -1)]:
        with pytest.raises(ValueError, match="no consistency proof"):
            consistency_proof(old, new, sub)
    assert consistency_proof(0, 5, sub) == []
    assert consistency_proof(5, 5, sub) == []
    with pytest.raises(ValueError, match="did not return a 32-byte hash"):
        inclusion_proof(0, 2, lambda s, e: b"short")
    with pytest.raises(ValueError, match="not a non-empty range"):
        sub(3, 9)


def test_wrong_size_with_the_same_root_is_the_claimed_tree_shape():
    """Why a proof may verify under another size WITH THE SAME ROOT: leaf 0's path has the same shape in trees of 3
    and 4 leaves (sibling leaf 1, then one right-hand node), so the verifier computes the same value. It proves what
    ``root`` commits to, not which size ``root`` belongs to; that binding is the signed checkpoint's (size, root).
    With the genuine root of size 3 the size-4 proof is rejected."""
    proof4 = inclusion_proof(0, 4, SUBTREE_A)
    assert verify_inclusion(0, 3, TREE_A[0], proof4, ROOTS_A[4])
    assert not verify_inclusion(0, 3, TREE_A[0], proof4, ROOTS_A[3])
    c14 = consistency_proof(1, 4, SUBTREE_A)
    assert verify_consistency(1, 3, ROOTS_A[1], ROOTS_A[4], c14)
    assert not verify_consistency(1, 3, ROOTS_A[1], ROOTS_A[3], c14)


# --- Exhaustive over small trees --------------------------------------------------------------------------------------


def _recording(size: int) -> tuple[Callable[[int, int], bytes], list[tuple[int, int]]]:
    calls: list[tuple[int, int]] = []

    def subtree(start: int, end: int) -> bytes:
        calls.append((start, end))
        return SUBTREE_A(start, end)

    return subtree, calls


def _assert_storable(calls: list[tuple[int, int]], size: int) -> None:
    """Only aligned complete subtrees, or right-edge ranges [start, size) with start a multiple of the smallest power
    of two covering the range, are asked for (what a store of complete subtrees can answer)."""
    for start, end in calls:
        width = end - start
        assert 0 <= start < end <= size, (start, end, size)
        if width & (width - 1) == 0:
            assert start % width == 0, (start, end)
        else:
            assert end == size, (start, end, size)
            assert start % (1 << width.bit_length()) == 0, (start, end)


@pytest.mark.parametrize("size", range(1, 41))
def test_every_inclusion_proof_of_small_trees(size):
    for index in range(size):
        subtree, calls = _recording(size)
        proof = inclusion_proof(index, size, subtree)
        _assert_storable(calls, size)
        assert proof == _path(index, 0, size)
        assert verify_inclusion(index, size, TREE_A[index], proof, ROOTS_A[size])
        assert ref_verify_inclusion(index, size, TREE_A[index], proof, ROOTS_A[size])
        for j in range(size):  # any other leaf's proof or index fails
            if j != index:
                assert not verify_inclusion(j, size, TREE_A[index], proof, ROOTS_A[size])
                assert not verify_inclusion(index, size, TREE_A[j], proof, ROOTS_A[size])


def _path(m: int, start: int, end: int) -> list[bytes]:
    """PATH(m, D[start:end]) by the RFC's recursion, over TREE_A."""
    n = end - start
    if n == 1:
        return []
    k = split_point(n)
    if m < k:
        return [*_path(m, start, start + k), root_of_leaves(TREE_A[start + k : end])]
    return [*_path(m - k, start + k, end), root_of_leaves(TREE_A[start : start + k])]


def _subproof(m: int, start: int, end: int, whole: bool) -> list[bytes]:
    """SUBPROOF(m, D[start:end], b) by the RFC's recursion, over TREE_A."""
    n = end - start
    if m == n:
        return [] if whole else [root_of_leaves(TREE_A[start:end])]
    k = split_point(n)
    if m <= k:
        return [*_subproof(m, start, start + k, whole), root_of_leaves(TREE_A[start + k : end])]
    return [*_subproof(m - k, start + k, end, False), root_of_leaves(TREE_A[start : start + k])]


@pytest.mark.parametrize("new", range(1, 41))
def test_every_consistency_proof_of_small_trees(new):
    for old in range(0, new + 1):
        subtree, calls = _recording(new)
        proof = consistency_proof(old, new, subtree)
        _assert_storable(calls, new)
        assert proof == ([] if old in (0, new) else _subproof(old, 0, new, True))
        assert verify_consistency(old, new, ROOTS_A[old], ROOTS_A[new], proof)
        assert ref_verify_consistency(old, new, ROOTS_A[old], ROOTS_A[new], proof)
        for m in range(0, new + 1):  # the proof is for one old size only
            if m != old and proof:
                assert not verify_consistency(m, new, ROOTS_A[m], ROOTS_A[new], proof), (m, old, new)


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 33])
def test_all_inclusion_corruptions_of_small_trees(size):
    for index in range(size):
        proof = inclusion_proof(index, size, SUBTREE_A)
        _assert_inclusion_negatives(
            index, size, TREE_A[: 2 * size + 2], proof, ROOTS_A[size], ROOTS_A.__getitem__, ROOTS_B[size]
        )


@pytest.mark.parametrize("new", [2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17])
def test_all_consistency_corruptions_of_small_trees(new):
    for old in range(1, new):
        proof = consistency_proof(old, new, SUBTREE_A)
        _assert_consistency_negatives(old, new, proof, ROOTS_A.__getitem__, ROOTS_B.__getitem__, max_size=2 * new)


# --- Properties over random trees up to 300 leaves ----------------------------------------------------------------


@st.composite
def leaf_in_tree(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(st.integers(1, MAX))
    return draw(st.integers(0, size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(2, MAX))
    return draw(st.integers(1, new - 1)), new


@PROPERTY
@given(leaf_in_tree())
def test_inclusion_proofs_verify_and_corruptions_fail(case):
    index, size = case
    subtree, calls = _recording(size)
    proof = inclusion_proof(index, size, subtree)
    _assert_storable(calls, size)
    assert ref_verify_inclusion(index, size, TREE_A[index], proof, ROOTS_A[size])
    _assert_inclusion_negatives(index, size, TREE_A, proof, ROOTS_A[size], ROOTS_A.__getitem__, ROOTS_B[size])


@PROPERTY
@given(two_sizes())
def test_consistency_proofs_verify_and_corruptions_fail(case):
    old, new = case
    subtree, calls = _recording(new)
    proof = consistency_proof(old, new, subtree)
    _assert_storable(calls, new)
    assert ref_verify_consistency(old, new, ROOTS_A[old], ROOTS_A[new], proof)
    _assert_consistency_negatives(old, new, proof, ROOTS_A.__getitem__, ROOTS_B.__getitem__, max_size=MAX)


@PROPERTY
@given(
    st.integers(0, 70),
    st.integers(0, 70),
    st.lists(st.sampled_from([*TREE_A[:8], *ROOTS_A[1:9], EMPTY_ROOT, SOME_HASH]), max_size=8),
    st.sampled_from([*ROOTS_A[:9], *TREE_A[:4], SOME_HASH]),
    st.sampled_from([*ROOTS_A[:9], *TREE_A[:4], SOME_HASH]),
)
def test_verifiers_agree_with_the_recursive_definition_on_arbitrary_input(a, b, proof, h1, h2):
    """Fuzz with plausible-looking parts (real nodes of the tree in the wrong places): the bit-twiddling verifiers
    accept exactly what the RFC's recursive definitions accept."""
    assert verify_inclusion(a, b, h1, proof, h2) == ref_verify_inclusion(a, b, h1, proof, h2)
    assert verify_consistency(a, b, h1, h2, proof) == ref_verify_consistency(a, b, h1, h2, proof)


@PROPERTY
@given(two_sizes(), st.integers(0, MAX))
def test_inclusion_in_the_old_tree_carries_over_through_consistency(case, pick):
    """An entry proven in the old tree head is provable at the same index in the new one (append-only)."""
    old, new = case
    index = pick % old
    assert verify_inclusion(index, old, TREE_A[index], inclusion_proof(index, old, SUBTREE_A), ROOTS_A[old])
    assert verify_consistency(old, new, ROOTS_A[old], ROOTS_A[new], consistency_proof(old, new, SUBTREE_A))
    assert verify_inclusion(index, new, TREE_A[index], inclusion_proof(index, new, SUBTREE_A), ROOTS_A[new])

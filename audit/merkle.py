"""RFC 6962 / RFC 9162 Merkle tree: leaf and node hashes, roots, inclusion and consistency proofs."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


class Frontier:
    """The compact range of an append-only tree: one perfect-subtree root per set bit of its size."""

    __slots__ = ("size", "stack")

    def __init__(self) -> None:
        self.size = 0
        self.stack: list[bytes] = []

    def push(self, lh: bytes) -> None:
        h = lh
        n = self.size
        while n & 1:
            h = node_hash(self.stack.pop(), h)
            n >>= 1
        self.stack.append(h)
        self.size += 1

    def extend(self, hashes: Iterable[bytes]) -> None:
        for h in hashes:
            self.push(h)

    def root(self) -> bytes:
        if not self.stack:
            return EMPTY_ROOT
        h = self.stack[-1]
        for s in reversed(self.stack[:-1]):
            h = node_hash(s, h)
        return h


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root(leaves: Sequence[bytes]) -> bytes:
    f = Frontier()
    f.extend(leaves)
    return f.root()


class Tree:
    """A tree over fixed leaf hashes with every level kept (2n hashes), so that any subtree hash
    and therefore any inclusion or consistency proof costs O(log n)."""

    def __init__(self, leaves: Iterable[bytes] = ()) -> None:
        self.levels: list[list[bytes]] = [[]]
        self.extend(leaves)

    def extend(self, leaves: Iterable[bytes]) -> None:
        """Append leaves, hashing every node they complete (each node is hashed once, however
        the leaves arrive): level k+1 always holds len(level k) // 2 nodes."""
        self.levels[0].extend(leaves)
        k = 0
        while len(self.levels[k]) > 1:
            below = self.levels[k]
            if k + 1 == len(self.levels):
                self.levels.append([])
            above = self.levels[k + 1]
            sha256 = hashlib.sha256
            above.extend(
                [
                    sha256(b"\x01" + below[i] + below[i + 1]).digest()
                    for i in range(2 * len(above), len(below) - 1, 2)
                ]
            )
            k += 1

    def __len__(self) -> int:
        return len(self.levels[0])

    def mth(self, lo: int, hi: int) -> bytes:
        """MTH(D[lo:hi]) for the ranges RFC 6962's recursion visits (lo a multiple of the split)."""
        n = hi - lo
        if n == 0:
            return EMPTY_ROOT
        if n & (n - 1) == 0:
            k = n.bit_length() - 1
            if lo % n == 0 and k < len(self.levels):
                return self.levels[k][lo >> k]
        if n == 1:  # pragma: no cover - handled above
            return self.levels[0][lo]
        k = _split(n)
        return node_hash(self.mth(lo, lo + k), self.mth(lo + k, hi))

    def root(self, size: int | None = None) -> bytes:
        return self.mth(0, len(self) if size is None else size)

    def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        """RFC 6962 PATH(index, D[0:size])."""
        if not 0 <= index < size <= len(self):
            raise ValueError("index out of range")
        path: list[bytes] = []
        lo, hi = 0, size
        while hi - lo > 1:
            k = _split(hi - lo)
            if index < lo + k:
                path.append(self.mth(lo + k, hi))
                hi = lo + k
            else:
                path.append(self.mth(lo, lo + k))
                lo = lo + k
        return path[::-1]

    def consistency_proof(self, old: int, new: int) -> list[bytes]:
        """RFC 6962 PROOF(old, D[0:new])."""
        if not 0 <= old <= new <= len(self):
            raise ValueError("sizes out of range")
        if old == 0 or old == new:
            return []
        out: list[bytes] = []
        m, lo, hi, complete = old, 0, new, True
        while True:
            n = hi - lo
            if m == n:
                if not complete:
                    out.append(self.mth(lo, hi))
                break
            k = _split(n)
            if m <= k:
                out.append(self.mth(lo + k, hi))
                hi = lo + k
            else:
                out.append(self.mth(lo, lo + k))
                m, lo, complete = m - k, lo + k, False
        return out[::-1]


def inclusion_proof(leaves: Sequence[bytes], index: int, size: int) -> list[bytes]:
    """RFC 6962 PATH(index, D[0:size]) over leaf hashes (builds a Tree: reuse one for many proofs)."""
    return Tree(leaves[:size]).inclusion_proof(index, size) if size <= len(leaves) else _bad()


def consistency_proof(leaves: Sequence[bytes], old: int, new: int) -> list[bytes]:
    """RFC 6962 PROOF(old, D[0:new]) over leaf hashes."""
    return Tree(leaves[:new]).consistency_proof(old, new) if 0 <= old <= new <= len(leaves) else _bad()


def _bad() -> list[bytes]:
    raise ValueError("sizes out of range")


def verify_inclusion(lh: bytes, index: int, size: int, proof: Sequence[bytes], root_hash: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if index >= size or index < 0:
        return False
    fn, sn, r = index, size - 1, lh
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return sn == 0 and r == root_hash


def verify_consistency(old: int, new: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if old < 0 or old > new:
        return False
    if old == new:
        return not proof and old_root == new_root
    if old == 0:
        return not proof
    if not proof:
        return False
    path = list(proof)
    if old & (old - 1) == 0:  # a power of two: old_root is the first node
        path.insert(0, old_root)
    fn, sn = old - 1, new - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
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
    return sn == 0 and fr == old_root and sr == new_root

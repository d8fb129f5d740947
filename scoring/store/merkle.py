"""RFC 6962 / RFC 9162 Merkle tree hashing over the audit log, for checkpoints and inclusion proofs.

Why a Merkle tree on top of the hash chain: a chain proves an entry belongs to a log only to someone who
re-reads every entry before it. With the tree, one signed root (a checkpoint) plus ``log2(n)`` sibling
hashes prove that one entry is in the log, so an appeals panel can check a single score event without
the database (RFC 9162 section 2.1.3). The leaves are the entries' chain hashes (``entry_hash``), so
the tree commits to exactly what the chain does: leaf ``i`` is ``SHA-256(0x00 || entry_hash(seq=i+1))``
and an inner node is ``SHA-256(0x01 || left || right)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

_sha256 = hashlib.sha256
LEAF_PREFIX, NODE_PREFIX = b"\x00", b"\x01"
TILE_LEVEL = 10
TILE = 1 << TILE_LEVEL  # leaves per cached tile: a complete, aligned subtree whose hash never changes


def leaf_hash(entry_hash_hex: str) -> bytes:
    """The Merkle leaf of one audit entry (its chain hash, hex) per RFC 6962: ``SHA-256(0x00 || data)``."""
    return _sha256(LEAF_PREFIX + bytes.fromhex(entry_hash_hex)).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return _sha256(NODE_PREFIX + left + right).digest()


def empty_root() -> bytes:
    return _sha256(b"").digest()


def _split(n: int) -> int:
    """The largest power of two strictly below ``n`` (n >= 2): where RFC 6962 splits a tree of n leaves."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH over already-hashed leaves (the reference definition, recursive; for small inputs and tests)."""
    if not leaves:
        return empty_root()
    if len(leaves) == 1:
        return leaves[0]
    k = _split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


class CompactRange:
    """The right edge of a growing tree: one hash per set bit of the size, so memory stays ``log2(n)``.

    ``push`` adds a leaf hash and merges equal-sized subtrees; ``root`` folds the edge from the right,
    which equals RFC 6962's MTH of all leaves pushed so far. ``on_tile(index, hash)``, when given, gets
    every complete 1024-leaf tile as it forms (for the proof cache) at no extra hashing.
    """

    __slots__ = ("stack", "size", "on_tile")

    def __init__(self, on_tile: Callable[[int, bytes], None] | None = None):
        self.stack: list[bytes] = []
        self.size = 0
        self.on_tile = on_tile

    def push(self, leaf: bytes) -> None:
        stack = self.stack
        stack.append(leaf)
        self.size += 1
        n = self.size
        level = 0
        while not n & 1:
            right = stack.pop()
            stack[-1] = _sha256(NODE_PREFIX + stack[-1] + right).digest()
            n >>= 1
            level += 1
            if level == TILE_LEVEL and self.on_tile is not None:
                self.on_tile((self.size >> TILE_LEVEL) - 1, stack[-1])

    def root(self) -> bytes:
        if not self.stack:
            return empty_root()
        acc = self.stack[-1]
        for h in reversed(self.stack[:-1]):
            acc = node_hash(h, acc)
        return acc


class TreeReader:
    """Subtree hashes of a log of ``size`` leaves, built from cached tiles and leaf ranges.

    ``tiles(first, last)`` returns the cached hashes of tiles ``first..last`` (a dict, possibly partial);
    ``leaves(start, end)`` returns leaf hashes ``start..end-1``. A complete aligned subtree of at least
    one tile is combined from tile hashes, everything else from leaves, so a proof in a million-entry log
    reads a few thousand hashes instead of a million. Tiles it had to compute are in ``computed``.
    """

    def __init__(self, size: int, tiles: Callable[[int, int], dict[int, bytes]],
                 leaves: Callable[[int, int], list[bytes]]):
        self.size = size
        self._tiles_src, self._leaves_src = tiles, leaves
        self._tiles: dict[int, bytes] = {}
        self._leaf_cache: dict[int, list[bytes]] = {}
        self.computed: dict[int, bytes] = {}

    def _leaf_range(self, start: int, end: int) -> list[bytes]:
        out: list[bytes] = []
        t = start >> TILE_LEVEL
        while start < end:
            if t not in self._leaf_cache:
                lo = t << TILE_LEVEL
                self._leaf_cache[t] = self._leaves_src(lo, min(lo + TILE, self.size))
            block = self._leaf_cache[t]
            lo = t << TILE_LEVEL
            hi = min(end, lo + TILE)
            out.extend(block[start - lo:hi - lo])
            start, t = hi, t + 1
        return out

    def _tile(self, i: int) -> bytes:
        if i not in self._tiles:
            self._tiles.update(self._tiles_src(i, i))
        if i not in self._tiles:
            h = root_of(self._leaf_range(i << TILE_LEVEL, (i + 1) << TILE_LEVEL))
            self._tiles[i] = self.computed[i] = h
        return self._tiles[i]

    def subtree(self, start: int, n: int) -> bytes:
        """MTH of leaves ``start .. start+n-1`` (a subtree RFC 6962 forms: aligned to its largest power)."""
        if n >= TILE and n & (n - 1) == 0 and start % TILE == 0:
            first, count = start >> TILE_LEVEL, n >> TILE_LEVEL
            missing = [i for i in range(first, first + count) if i not in self._tiles]
            if missing:
                self._tiles.update(self._tiles_src(missing[0], missing[-1]))
            level = [self._tile(i) for i in range(first, first + count)]
            while len(level) > 1:
                level = [node_hash(level[j], level[j + 1]) for j in range(0, len(level), 2)]
            return level[0]
        if n <= TILE:
            return root_of(self._leaf_range(start, start + n))
        k = _split(n)
        return node_hash(self.subtree(start, k), self.subtree(start + k, n - k))

    def root(self) -> bytes:
        return self.subtree(0, self.size) if self.size else empty_root()

    def inclusion_path(self, index: int) -> list[bytes]:
        """RFC 6962 PATH(m, D[n]): the sibling hashes from leaf ``index`` up to the root, bottom first."""
        if not 0 <= index < self.size:
            raise ValueError(f"leaf index {index} is outside a tree of {self.size} leaves")
        path: list[bytes] = []
        start, n, m = 0, self.size, index
        while n > 1:
            k = _split(n)
            if m < k:
                path.append(self.subtree(start + k, n - k))
                n = k
            else:
                path.append(self.subtree(start, k))
                start, n, m = start + k, n - k, m - k
        path.reverse()
        return path


def root_from_inclusion(index: int, size: int, leaf: bytes, path: Sequence[bytes]) -> bytes | None:
    """The root an inclusion proof implies (RFC 9162 section 2.1.3.2), or None if the proof is malformed."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return None
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
    return r if sn == 0 else None

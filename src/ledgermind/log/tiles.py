"""The in-memory right edge of a log's tree, and the tile and bundle encodings it is stored in.

Node hashes are stored in *tiles*: tile (L, t) holds levels 8L .. 8L+7 of the perfect subtree whose
bottom row is nodes [256 t, 256 t + 256) of level 8L. Row r of a tile of width w (number of bottom
nodes present) holds ``w >> r`` hashes, rows concatenated; a partial tile grows until w = 256.
Entries are stored in *bundles* of ENTRY_BUNDLE consecutive entries. Both are rewritten only while
they are the partial right edge; complete ones never change, which is what makes an append cheap.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Sequence

from ledgermind.log.hashing import EMPTY_ROOT, HASH_SIZE, NODE_PREFIX, fold_right

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
ENTRY_BUNDLE = 16

Node = tuple[int, int]
# _OFFSETS[width][row]: where row ``row`` starts in a tile of ``width`` bottom nodes, in hashes
_OFFSETS = [[sum(w >> j for j in range(r)) for r in range(TILE_HEIGHT)] for w in range(TILE_WIDTH + 1)]


def tile_id(tile_level: int, tile_index: int) -> int:
    """One integer key per tile (level in the top bits), so SQLite can use its rowid B-tree."""
    return (tile_level << 48) | tile_index


def tile_of(level: int, index: int) -> tuple[int, int, int, int]:
    """Locate node (level, index): returns (tile level, tile index, row in tile, position in row)."""
    tile_level, row = divmod(level, TILE_HEIGHT)
    shift = TILE_HEIGHT - row
    tile_index = index >> shift
    return tile_level, tile_index, row, index - (tile_index << shift)


def node_in_tile(width: int, blob: bytes, row: int, pos: int) -> bytes | None:
    """Return the hash at (row, pos) of a tile of ``width``, or None if the tile does not hold it yet."""
    if pos >= width >> row:
        return None
    off = (_OFFSETS[width][row] + pos) * HASH_SIZE
    return blob[off : off + HASH_SIZE]


def encode_bundle(entries: Sequence[bytes]) -> bytes:
    return struct.pack(f"<H{len(entries)}I", len(entries), *map(len, entries)) + b"".join(entries)


def decode_bundle(blob: bytes) -> list[bytes]:
    """Split a bundle into its entries. Raises ValueError when the encoding does not add up."""
    if len(blob) < 2:
        raise ValueError("bundle is truncated")
    (count,) = struct.unpack_from("<H", blob)
    head = 2 + 4 * count
    if count > ENTRY_BUNDLE or len(blob) < head:
        raise ValueError("bundle header is corrupt")
    lengths = struct.unpack_from(f"<{count}I", blob, 2)
    if head + sum(lengths) != len(blob):
        raise ValueError("bundle lengths do not match its size")
    out, pos = [], head
    for n in lengths:
        out.append(blob[pos : pos + n])
        pos += n
    return out


class TreeEdge:
    """The partial tiles, partial bundle and compact range of a tree of ``size`` leaves.

    ``extend`` appends leaves and returns exactly the tiles and bundles that changed, so a store writes
    O(batch) bytes per commit and never rebuilds the tree.
    """

    def __init__(self) -> None:
        self.size = 0
        self.rows: list[list[bytes]] = []  # rows[k]: hashes of level k from index bases[k] on
        self.bases: list[int] = []
        self.compact: dict[int, bytes] = {}  # level -> root of the perfect subtree for each set bit of size
        self.tail: list[bytes] = []  # entries of the partial bundle

    @classmethod
    def load(
        cls,
        size: int,
        get_tile: Callable[[int, int], tuple[int, bytes]],
        get_node: Callable[[Node], bytes],
        get_bundle: Callable[[int], list[bytes]],
    ) -> TreeEdge:
        """Rebuild the edge of a stored tree of ``size`` leaves from its partial tiles and bundle."""
        edge = cls()
        edge.size = size
        edge._ensure(size.bit_length() + 1)
        for k in range(len(edge.rows)):
            tile_level, row = divmod(k, TILE_HEIGHT)
            if row:
                continue
            t = size >> (TILE_HEIGHT * tile_level + TILE_HEIGHT)
            width = (size >> (TILE_HEIGHT * tile_level)) & (TILE_WIDTH - 1)
            if not width:
                continue
            got_width, blob = get_tile(tile_level, t)
            if got_width != width:
                raise ValueError(f"tile ({tile_level}, {t}) has width {got_width}, expected {width}")
            off = 0
            for r in range(TILE_HEIGHT):
                n = width >> r
                level = k + r
                edge._ensure(level + 1)
                edge.rows[level] = [blob[i : i + HASH_SIZE] for i in range(off, off + n * HASH_SIZE, HASH_SIZE)]
                off += n * HASH_SIZE
        for level in range(size.bit_length()):
            if size >> level & 1:
                edge.compact[level] = get_node((level, (size >> level) - 1))
        if size % ENTRY_BUNDLE:
            edge.tail = get_bundle(size // ENTRY_BUNDLE)
        return edge

    def _ensure(self, levels: int) -> None:
        while len(self.rows) < levels:
            level = len(self.rows)
            tile_level, row = divmod(level, TILE_HEIGHT)
            self.rows.append([])
            self.bases.append((self.size >> (TILE_HEIGHT * tile_level + TILE_HEIGHT)) << (TILE_HEIGHT - row))

    def root(self) -> bytes:
        if not self.compact:
            return EMPTY_ROOT
        return fold_right([self.compact[k] for k in sorted(self.compact, reverse=True)])

    def extend(
        self, entries: Sequence[bytes], leaf_hashes: Sequence[bytes]
    ) -> tuple[list[tuple[int, int, bytes]], list[tuple[int, bytes]]]:
        """Append leaves; return the changed tiles as (id, width, blob) and bundles as (id, blob)."""
        old, new = self.size, self.size + len(leaf_hashes)
        top = new.bit_length() + 1
        self._ensure(((top + TILE_HEIGHT - 1) // TILE_HEIGHT + 1) * TILE_HEIGHT)
        rows, bases = self.rows, self.bases
        rows[0].extend(leaf_hashes)
        sha, prefix = hashlib.sha256, NODE_PREFIX
        level = 0
        while (new >> (level + 1)) > (old >> (level + 1)):
            base = bases[level]
            pairs = iter(rows[level][2 * (old >> (level + 1)) - base : 2 * (new >> (level + 1)) - base])
            rows[level + 1].extend([sha(prefix + left + right).digest() for left, right in zip(pairs, pairs)])
            level += 1

        tiles: list[tuple[int, int, bytes]] = []
        tile_level = 0
        while (new >> (TILE_HEIGHT * tile_level)) > (old >> (TILE_HEIGHT * tile_level)):
            bottom_old = old >> (TILE_HEIGHT * tile_level)
            bottom_new = new >> (TILE_HEIGHT * tile_level)
            for t in range(bottom_old >> TILE_HEIGHT, ((bottom_new - 1) >> TILE_HEIGHT) + 1):
                width = min(TILE_WIDTH, bottom_new - (t << TILE_HEIGHT))
                parts = []
                for r in range(TILE_HEIGHT):
                    k = TILE_HEIGHT * tile_level + r
                    start = (t << (TILE_HEIGHT - r)) - bases[k]
                    parts.extend(rows[k][start : start + (width >> r)])
                tiles.append((tile_id(tile_level, t), width, b"".join(parts)))
            tile_level += 1

        for k in range(new.bit_length()):
            if new >> k & 1 and (new >> k) > (old >> k):
                self.compact[k] = rows[k][(new >> k) - 1 - bases[k]]
            elif not new >> k & 1:
                self.compact.pop(k, None)

        # keep only the partial tile of each level
        for k in range(len(rows)):
            tile_level, row = divmod(k, TILE_HEIGHT)
            nb = (new >> (TILE_HEIGHT * tile_level + TILE_HEIGHT)) << (TILE_HEIGHT - row)
            if nb != bases[k]:
                del rows[k][: nb - bases[k]]
                bases[k] = nb

        bundles: list[tuple[int, bytes]] = []
        pending = self.tail + list(entries)
        first = old // ENTRY_BUNDLE
        for i in range(0, len(pending), ENTRY_BUNDLE):
            bundles.append((first + i // ENTRY_BUNDLE, encode_bundle(pending[i : i + ENTRY_BUNDLE])))
        keep = new % ENTRY_BUNDLE
        self.tail = pending[len(pending) - keep :] if keep else []
        self.size = new
        return tiles, bundles

"""fsck: re-derive the whole tree from the stored entries and check it against what the log signed.

Everything is read in one snapshot (one read transaction), so a concurrent writer cannot make fsck
see a half-written state. It reads every entry once (O(n) time; memory for one batch), rebuilds every
tile, and reports: entries whose bytes no longer match their stored leaf hash (by index), stored tree
nodes that differ from the rebuilt ones, checkpoint rows whose note is unreadable, unsigned, or
disagrees with the row, checkpoints whose root the entries do not reproduce, and missing entries.
"""

from __future__ import annotations

import hashlib
import sqlite3
from dataclasses import dataclass, field

from ledgermind.log.checkpoint import CheckpointError
from ledgermind.log.hashing import HASH_SIZE, LEAF_PREFIX
from ledgermind.log.store import LogStore
from ledgermind.log.tiles import ENTRY_BUNDLE, TILE_HEIGHT, TILE_WIDTH, TreeEdge, decode_bundle


@dataclass
class FsckReport:
    """What fsck found. ``ok`` is True only when nothing at all is wrong."""

    size: int = 0
    entries_checked: int = 0
    checkpoints_checked: int = 0
    root: bytes = b""
    tampered_indices: list[int] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def fsck(store: LogStore, batch: int = 65_536) -> FsckReport:
    """Check every stored entry, tile and checkpoint of ``store``; never modifies it."""
    conn = sqlite3.connect(store.path, isolation_level=None)
    try:
        conn.execute("BEGIN")  # one snapshot for every read below
        try:
            return _fsck(store, conn, batch)
        finally:
            conn.execute("COMMIT")
    finally:
        conn.close()


def _signed_roots(store: LogStore, conn: sqlite3.Connection, report: FsckReport) -> dict[int, bytes]:
    """Roots of the checkpoint rows whose note verifies and agrees with the row; problems for the rest."""
    roots: dict[int, bytes] = {}
    rows = conn.execute("SELECT size, root, note FROM checkpoints ORDER BY size").fetchall()
    for size, root, note in rows:
        try:
            cp = store.verifier.open_checkpoint(bytes(note))
        except CheckpointError as e:
            report.problems.append(f"checkpoint at size {size}: {e}")
            continue
        if (cp.size, cp.root) != (size, bytes(root)):
            report.problems.append(
                f"checkpoint at size {size}: its signed note says size {cp.size} root {cp.root.hex()}, "
                f"the row says size {size} root {bytes(root).hex()}"
            )
            continue
        roots[size] = cp.root
    report.checkpoints_checked = len(rows)
    report.size = rows[-1][0] if rows else 0
    return roots


def _fsck(store: LogStore, conn: sqlite3.Connection, batch: int) -> FsckReport:
    report = FsckReport()
    want_roots = _signed_roots(store, conn, report)
    sizes = sorted(want_roots)
    stored_tiles = _StoredTiles(conn)
    partial: dict[int, tuple[int, bytes]] = {}  # latest version of tiles still growing
    edge = TreeEdge()
    pending: list[bytes] = []
    mismatched: list[tuple[int, bytes, int]] = []  # (checkpoint size, rebuilt root, last matching size)
    last_good = 0

    def extend(entries: list[bytes]) -> None:
        sha = hashlib.sha256
        tiles, _ = edge.extend(entries, [sha(LEAF_PREFIX + d).digest() for d in entries])
        for tid, width, blob in tiles:
            if width == TILE_WIDTH:
                partial.pop(tid, None)
                stored_tiles.compare(tid, width, blob, report)
            else:
                partial[tid] = (width, blob)

    def flush() -> None:
        nonlocal last_good
        # extend segment by segment so the root can be checked at every signed size
        start, end = edge.size, edge.size + len(pending)
        pos = start
        for cut in [s for s in sizes if start < s <= end] + [end]:
            if cut > pos:
                extend(pending[pos - start : cut - start])
                pos = cut
            if cut in want_roots:
                if edge.root() == want_roots[cut]:
                    last_good = cut
                else:
                    mismatched.append((cut, edge.root(), last_good))
        pending.clear()

    expected_bundle = 0
    for bid, blob in conn.execute("SELECT id, data FROM bundles WHERE id * ? < ? ORDER BY id", (ENTRY_BUNDLE, report.size)):
        first = bid * ENTRY_BUNDLE
        if bid != expected_bundle:
            report.problems.append(f"entries {expected_bundle * ENTRY_BUNDLE}..{first - 1} are missing")
            break
        expected_bundle += 1
        try:
            entries = decode_bundle(bytes(blob))
        except ValueError as e:
            report.tampered_indices.extend(range(first, min(first + ENTRY_BUNDLE, report.size)))
            report.problems.append(f"entries {first}..{first + ENTRY_BUNDLE - 1}: unreadable bundle ({e})")
            break
        pending.extend(entries[: report.size - first])
        if len(pending) >= batch:
            flush()
    flush()
    for tid, (width, blob) in partial.items():
        stored_tiles.compare(tid, width, blob, report)

    if stored_tiles.node_diffs and not report.tampered_indices:  # else they follow from the changed entries
        report.problems.append(
            f"{len(stored_tiles.node_diffs)} stored tree nodes differ from the ones the entries give "
            f"(first: {stored_tiles.node_diffs[0]})"
        )
    if mismatched:
        size, rebuilt, good = mismatched[0]
        more = f"; {len(mismatched) - 1} later checkpoints do not match either" if len(mismatched) > 1 else ""
        report.problems.append(
            f"checkpoint at size {size}: the entries give root {rebuilt.hex()}, the log signed "
            f"{want_roots[size].hex()}: an entry in {good}..{size - 1} was changed{more}"
        )
    report.entries_checked = edge.size
    if edge.size != report.size:
        report.problems.append(f"the log has {edge.size} readable entries, its latest checkpoint says {report.size}")
    report.root = edge.root()
    report.tampered_indices = sorted(set(report.tampered_indices))
    return report


class _StoredTiles:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.node_diffs: list[tuple[int, int]] = []

    def compare(self, tid: int, width: int, blob: bytes, report: FsckReport) -> None:
        """Compare a rebuilt tile with the stored one, row by row (rows are laid out by the tile's width)."""
        row = self.conn.execute("SELECT width, hashes FROM tiles WHERE id = ?", (tid,)).fetchone()
        level, index = tid >> 48, tid & ((1 << 48) - 1)
        if row is None:
            report.problems.append(f"tile ({level}, {index}) is missing")
            return
        stored_width, stored = row[0], bytes(row[1])
        if stored_width < width:
            report.problems.append(f"tile ({level}, {index}) holds {stored_width} nodes, expected {width}")
            return
        if stored_width == width and stored == blob:
            return
        off_rebuilt = off_stored = 0
        for row_no in range(TILE_HEIGHT):
            n = width >> row_no
            for pos in range(n):
                a = blob[(off_rebuilt + pos) * HASH_SIZE : (off_rebuilt + pos + 1) * HASH_SIZE]
                b = stored[(off_stored + pos) * HASH_SIZE : (off_stored + pos + 1) * HASH_SIZE]
                if a != b:
                    node_level = level * TILE_HEIGHT + row_no
                    node_index = (index << (TILE_HEIGHT - row_no)) + pos
                    if node_level == 0:
                        report.tampered_indices.append(node_index)
                        report.problems.append(f"entry {node_index} does not match its stored leaf hash")
                    else:
                        self.node_diffs.append((node_level, node_index))
            off_rebuilt += n
            off_stored += stored_width >> row_no

"""fsck: re-derive the whole tree from the stored entries and check it against what the log signed.

It reads every entry once (O(n) time, O(log n) memory besides one batch), rebuilds every tile, and
reports: entries whose bytes no longer match their stored leaf hash (by index), stored tree nodes that
differ from the rebuilt ones, checkpoints whose signature fails or whose root the entries do not
reproduce, and gaps (missing or unreadable bundles).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from ledgermind.errors import StorageError
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
    report = FsckReport(size=store.size())
    checkpoints = list(store.checkpoints())
    for cp in checkpoints:
        try:
            store.verifier.open_checkpoint(cp.note)
        except CheckpointError as e:
            report.problems.append(f"checkpoint at size {cp.size}: {e}")
    report.checkpoints_checked = len(checkpoints)
    want_roots = {cp.size: cp.root for cp in checkpoints}
    last_good = 0

    stored_tiles = _StoredTiles(store)
    partial: dict[int, tuple[int, bytes]] = {}  # latest version of tiles still growing
    edge = TreeEdge()
    pending: list[bytes] = []
    expected_bundle = 0
    sizes = sorted(want_roots)
    mismatched: list[tuple[int, bytes, int]] = []  # (checkpoint size, rebuilt root, last matching size)

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
        cuts = [s for s in sizes if start < s <= end] + [end]
        pos = start
        for cut in cuts:
            if cut > pos:
                extend(pending[pos - start : cut - start])
                pos = cut
            if cut in want_roots:
                if edge.root() == want_roots[cut]:
                    last_good = cut
                else:
                    mismatched.append((cut, edge.root(), last_good))
        pending.clear()

    try:
        for bid, blob in store.bundles():
            if bid != expected_bundle:
                report.problems.append(f"entries {expected_bundle * ENTRY_BUNDLE}..{bid * ENTRY_BUNDLE - 1} are missing")
                break
            expected_bundle += 1
            try:
                entries = decode_bundle(blob)
            except ValueError as e:
                first = bid * ENTRY_BUNDLE
                report.tampered_indices.extend(range(first, first + ENTRY_BUNDLE))
                report.problems.append(f"entries {first}..{first + ENTRY_BUNDLE - 1}: unreadable bundle ({e})")
                break
            room = report.size - (edge.size + len(pending))
            pending.extend(entries[:room])
            if len(pending) >= batch:
                flush()
        flush()
        for tid, (width, blob) in partial.items():
            stored_tiles.compare(tid, width, blob, report)
    except StorageError as e:
        report.problems.append(str(e))
    finally:
        stored_tiles.close()
    if stored_tiles.node_diffs and not report.tampered_indices:  # else they follow from the changed entries
        first = stored_tiles.node_diffs[0]
        report.problems.append(
            f"{len(stored_tiles.node_diffs)} stored tree nodes differ from the ones the entries give (first: {first})"
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
    def __init__(self, store: LogStore) -> None:
        self.store = store
        self.conn = store._connect()
        self.node_diffs: list[tuple[int, int]] = []

    def close(self) -> None:
        self.conn.close()

    def compare(self, tid: int, width: int, blob: bytes, report: FsckReport) -> None:
        row = self.conn.execute("SELECT width, hashes FROM tiles WHERE id = ?", (tid,)).fetchone()
        level, index = tid >> 48, tid & ((1 << 48) - 1)
        if row is None:
            report.problems.append(f"tile ({level}, {index}) is missing")
            return
        stored_width, stored = row[0], bytes(row[1])
        if stored_width < width or stored[: len(blob)] == blob:
            if stored_width < width:
                report.problems.append(f"tile ({level}, {index}) holds {stored_width} nodes, expected {width}")
            return
        # find the differing hashes; in the bottom row of tile level 0 they name tampered entries
        off = 0
        for row_no in range(TILE_HEIGHT):
            n = width >> row_no
            for pos in range(n):
                a = blob[(off + pos) * HASH_SIZE : (off + pos + 1) * HASH_SIZE]
                b = stored[(off + pos) * HASH_SIZE : (off + pos + 1) * HASH_SIZE]
                if a != b:
                    node_level = level * TILE_HEIGHT + row_no
                    node_index = (index << (TILE_HEIGHT - row_no)) + pos
                    if node_level == 0:
                        report.tampered_indices.append(node_index)
                        report.problems.append(f"entry {node_index} does not match its stored leaf hash")
                    else:
                        self.node_diffs.append((node_level, node_index))
            off += n

"""The durable log: an append-only SQLite file (WAL) of entries, tree tiles and signed checkpoints.

Appends are group-committed by one writer thread: entries queued by any number of callers are
written in one transaction (up to ``max_batch`` entries; by default it takes what is queued and does
not wait, so entries arriving during one commit's fsync form the next batch; ``max_latency`` > 0 waits
that long for more), and each caller is acknowledged only after that transaction is durable
(``synchronous=FULL``). Every commit signs a checkpoint of the new tree in the same transaction, and
only after checking that the tree it extends is the one the previous checkpoint signed, so the log
never signs two inconsistent checkpoints. Hashing and tiling run in the submitting threads; the writer
thread mostly waits on SQLite with the GIL released, so the two overlap.
Several processes may open the same file: a commit re-reads the tree edge when another process
has appended since.
"""

from __future__ import annotations

import hashlib
import os
import queue
import sqlite3
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from ledgermind.errors import InvalidInputError, NotFoundError, StorageError
from ledgermind.log.checkpoint import Checkpoint, NoteSigner, NoteVerifier
from ledgermind.log.hashing import EMPTY_ROOT, LEAF_PREFIX, fold_right
from ledgermind.log.proofs import ProofPlan, consistency_plan, inclusion_plan, resolve, root_plan
from ledgermind.log.tiles import ENTRY_BUNDLE, TILE_HEIGHT, TreeEdge, decode_bundle, node_in_tile, tile_id


FORMAT = "ledgermind-log-v1"
MAX_ENTRY_BYTES = 1 << 20
PAGE_SIZE = 32768  # a whole tile (16 KiB) fits in one page: one page read per tile

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS bundles (id INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tiles (id INTEGER PRIMARY KEY, width INTEGER NOT NULL, hashes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (size INTEGER PRIMARY KEY, root BLOB NOT NULL, note BLOB NOT NULL, time REAL NOT NULL);
"""


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint as the log signed it: the parsed body and the full signed note."""

    checkpoint: Checkpoint
    note: bytes

    @property
    def size(self) -> int:
        return self.checkpoint.size

    @property
    def root(self) -> bytes:
        return self.checkpoint.root


class _Job:
    """Entries on their way into the log, with the tiles, bundles and root computed for them."""

    __slots__ = ("items", "start", "generation", "tiles", "bundles", "prev_root", "root", "future")

    def __init__(self, items: list[bytes]) -> None:
        self.items = items
        self.start = -1
        self.generation = -1
        self.tiles: list[tuple[int, int, bytes]] = []
        self.bundles: list[tuple[int, bytes]] = []
        self.prev_root = b""
        self.root = b""
        self.future: Future[int] = Future()


_STOP = object()


def _insert_rows(conn: sqlite3.Connection, table: str, rows: list[tuple]) -> None:
    """INSERT OR REPLACE many rows with few multi-row statements.

    Each SQLite step releases and re-takes the GIL; with one step per row the writer thread waits for
    the GIL hundreds of times per commit while callers hash. Few big statements avoid that convoy.
    """
    if not rows:
        return
    width = len(rows[0])
    per = max(1, 30_000 // width)  # stay under SQLite's 32766 host-parameter limit
    one = "(" + ",".join("?" * width) + ")"
    for i in range(0, len(rows), per):
        chunk = rows[i : i + per]
        sql = f"INSERT OR REPLACE INTO {table} VALUES " + ",".join([one] * len(chunk))
        conn.execute(sql, [v for row in chunk for v in row])


def _locked(e: sqlite3.OperationalError) -> bool:
    return "locked" in str(e) or "busy" in str(e)


class LogStore:
    """An append-only RFC 9162 log in one SQLite file.

    Open with a ``signer`` to append (the file is created if missing); without one the store is
    read-only and the file must exist. Use as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        signer: NoteSigner | None = None,
        *,
        max_batch: int = 50_000,
        max_latency: float = 0.0,
        busy_timeout: float = 5.0,
        tile_cache: int = 512,
    ) -> None:
        self.path = Path(path)
        if signer is None and not self.path.exists():
            raise NotFoundError(f"no log at {self.path}")
        if max_batch < 1 or max_latency < 0:
            raise InvalidInputError("max_batch must be >= 1 and max_latency >= 0")
        self.max_batch = max_batch
        self.max_latency = max_latency
        self.busy_timeout = busy_timeout
        self._signer = signer
        self._local = threading.local()
        self._conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        self._cache: OrderedDict[int, tuple[int, bytes]] = OrderedDict()
        self._cache_max = tile_cache
        self._cache_lock = threading.Lock()
        self._queue: queue.Queue[object] = queue.Queue()
        self._edge_lock = threading.Lock()
        self._writer: threading.Thread | None = None
        self._edge: TreeEdge | None = None  # the tree as it will be once every queued job is committed
        self._generation = 0  # bumped whenever queued work must be recomputed
        self._pending: deque[object] = deque()  # jobs taken off the queue by _redo, in order
        self._closed = False
        self._init_file()

    # ----------------------------------------------------------------- connections
    def _connect(self) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA mmap_size=268435456")
        except sqlite3.DatabaseError as e:
            raise StorageError(f"cannot open log {self.path}: {e}") from e
        with self._conns_lock:
            self._conns.append(conn)
        return conn

    def _db(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect()
        return conn

    def _init_file(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = self._db()
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute(f"PRAGMA page_size={PAGE_SIZE}")  # only takes effect on a new file
                conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(_SCHEMA)
            meta = dict(conn.execute("SELECT key, value FROM meta"))
        except sqlite3.OperationalError as e:
            if _locked(e):
                raise StorageError(f"log {self.path} is locked by another process (waited {self.busy_timeout:g} s)") from e
            raise StorageError(f"log {self.path} is not usable: {e}") from e
        except sqlite3.DatabaseError as e:
            raise StorageError(f"log {self.path} is not a ledgermind log: {e}") from e
        if not meta:
            if self._signer is None:
                raise StorageError(f"log {self.path} has never been initialised")
            with self._transaction(conn):
                conn.executemany(
                    "INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)",
                    [("format", FORMAT), ("origin", self._signer.name), ("vkey", self._signer.vkey())],
                )
            meta = dict(conn.execute("SELECT key, value FROM meta"))
        if meta.get("format") != FORMAT:
            raise StorageError(f"log {self.path} has format {meta.get('format')!r}, expected {FORMAT!r}")
        self.origin = meta["origin"]
        self.verifier = NoteVerifier.from_vkey(meta["vkey"])
        if self._signer is not None and self._signer.vkey() != meta["vkey"]:
            raise StorageError(f"log {self.path} was created with another key ({meta['vkey']})")

    class _Txn:
        def __init__(self, conn: sqlite3.Connection, path: Path, timeout: float) -> None:
            self.conn, self.path, self.timeout = conn, path, timeout

        def __enter__(self) -> sqlite3.Connection:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                if _locked(e):
                    raise StorageError(f"log {self.path} is locked by another process (waited {self.timeout:g} s)") from e
                raise StorageError(f"cannot write log {self.path}: {e}") from e
            return self.conn

        def __exit__(self, exc_type, exc, tb) -> None:
            if exc_type is None:
                try:
                    self.conn.execute("COMMIT")
                    return
                except sqlite3.DatabaseError as e:
                    self.conn.execute("ROLLBACK")
                    raise StorageError(f"cannot commit to log {self.path}: {e}") from e
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")

    def _transaction(self, conn: sqlite3.Connection) -> LogStore._Txn:
        return self._Txn(conn, self.path, self.busy_timeout)

    def close(self) -> None:
        """Finish queued appends, stop the writer and close every connection."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None:
            self._queue.put(_STOP)
            self._writer.join()
        with self._conns_lock:
            for conn in self._conns:
                conn.close()
            self._conns.clear()

    def __enter__(self) -> LogStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----------------------------------------------------------------- reads
    def _tile(self, conn: sqlite3.Connection, tile_level: int, tile_index: int, cache: bool = True) -> tuple[int, bytes]:
        key = tile_id(tile_level, tile_index)
        row = conn.execute("SELECT width, hashes FROM tiles WHERE id = ?", (key,)).fetchone()
        if row is None:
            raise StorageError(f"log {self.path} is missing tile ({tile_level}, {tile_index})")
        got = (row[0], bytes(row[1]))
        if cache:
            with self._cache_lock:
                self._cache[key] = got
                if len(self._cache) > self._cache_max:
                    self._cache.popitem(last=False)
        return got

    def _node_getter(self, conn: sqlite3.Connection, cache: bool = True):
        """A node fetcher for one read: each tile is read at most once per read.

        Tiles only ever grow and a stored hash never changes, so a cached tile stays valid for every
        hash it holds; a tile is re-read only when the wanted hash lies beyond its cached width.
        """
        seen: dict[int, tuple[int, bytes]] = {}
        shared = self._cache if cache else {}

        def get(node: tuple[int, int]) -> bytes:
            # inlined tile_of / node_in_tile: this runs ~20 times per proof
            level, index = node
            tl, row = level >> 3, level & 7
            ti = index >> (TILE_HEIGHT - row)
            pos = index - (ti << (TILE_HEIGHT - row))
            key = (tl << 48) | ti
            tile = seen.get(key) or shared.get(key)
            if tile is None or pos >= tile[0] >> row:
                tile = self._tile(conn, tl, ti, cache)
            seen[key] = tile
            h = node_in_tile(tile[0], tile[1], row, pos)
            if h is None:
                raise StorageError(f"log {self.path} has no stored node ({level}, {index})")
            return h

        return get

    def size(self) -> int:
        """Number of entries durably in the log (the size of its latest signed checkpoint)."""
        row = self._db().execute("SELECT max(size) FROM checkpoints").fetchone()
        return row[0] or 0

    def latest_checkpoint(self) -> SignedCheckpoint | None:
        row = self._db().execute("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
        return None if row is None else self._signed(bytes(row[0]))

    def checkpoint_at(self, size: int) -> SignedCheckpoint:
        row = self._db().execute("SELECT note FROM checkpoints WHERE size = ?", (size,)).fetchone()
        if row is None:
            raise NotFoundError(f"the log signed no checkpoint at size {size}")
        return self._signed(bytes(row[0]))

    def checkpoint_covering(self, index: int) -> SignedCheckpoint:
        """The first checkpoint that includes entry ``index``: the one signed when it was appended."""
        row = self._db().execute("SELECT note FROM checkpoints WHERE size > ? ORDER BY size LIMIT 1", (index,)).fetchone()
        if row is None:
            raise NotFoundError(f"no signed checkpoint includes entry {index}")
        return self._signed(bytes(row[0]))

    def checkpoints(self) -> Iterator[SignedCheckpoint]:
        """Every checkpoint the log signed, oldest first (signatures are not re-verified here)."""
        for (note,) in self._db().execute("SELECT note FROM checkpoints ORDER BY size"):
            yield self._signed(bytes(note))

    def _signed(self, note: bytes) -> SignedCheckpoint:
        body = note[: note.rfind(b"\n\n") + 1]
        return SignedCheckpoint(Checkpoint.parse_body(body), note)

    def entry(self, index: int) -> bytes:
        """The bytes of entry ``index``. Raises NotFoundError beyond the end of the log."""
        if index < 0 or index >= self.size():
            raise NotFoundError(f"no entry {index}: the log has {self.size()} entries")
        row = self._db().execute("SELECT data FROM bundles WHERE id = ?", (index // ENTRY_BUNDLE,)).fetchone()
        if row is None:
            raise StorageError(f"log {self.path} is missing the bundle of entry {index}")
        try:
            return decode_bundle(bytes(row[0]))[index % ENTRY_BUNDLE]
        except (ValueError, IndexError) as e:
            raise StorageError(f"log {self.path}: the bundle holding entry {index} is corrupt") from e

    def bundles(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """Raw (bundle id, encoded bundle) rows from bundle ``start`` on, in order (for fsck and indexers)."""
        conn = self._connect()
        try:
            yield from ((i, bytes(b)) for i, b in conn.execute("SELECT id, data FROM bundles WHERE id >= ? ORDER BY id", (start,)))
        finally:
            conn.close()
            with self._conns_lock:
                if conn in self._conns:
                    self._conns.remove(conn)

    def entries(self, start: int = 0, end: int | None = None) -> Iterator[tuple[int, bytes]]:
        """Yield (index, entry) for start <= index < end (default: the current size)."""
        end = self.size() if end is None else end
        for bid, blob in self.bundles(start // ENTRY_BUNDLE):
            for j, data in enumerate(decode_bundle(blob)):
                i = bid * ENTRY_BUNDLE + j
                if i >= end:
                    return
                if i >= start:
                    yield i, data

    def _resolve(self, plan: ProofPlan, conn: sqlite3.Connection | None = None, cache: bool = True) -> list[bytes]:
        return resolve(plan, self._node_getter(conn or self._db(), cache))

    def root(self, size: int | None = None) -> bytes:
        """Root hash of the tree of the first ``size`` entries (default: the whole log)."""
        size = self._tree_size(size)
        if size == 0:
            return EMPTY_ROOT
        return fold_right(self._resolve([(n,) for n in root_plan(size)]))

    def _tree_size(self, size: int | None) -> int:
        """``size``, or the current size if None; NotFoundError if the log is not that big."""
        current = self.size()
        if size is None:
            return current
        if not 0 <= size <= current:
            raise NotFoundError(f"no tree of size {size}: the log has {current} entries")
        return size

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 inclusion proof of entry ``index`` in the tree of ``size`` entries, from stored nodes in O(log n)."""
        size = self._tree_size(size)
        if not 0 <= index < size:
            raise NotFoundError(f"no entry {index} in a tree of size {size}")
        return self._resolve(inclusion_plan(index, size))

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        """RFC 9162 consistency proof from the tree of ``size1`` to the tree of ``size2`` entries (0 < size1 <= size2)."""
        size2 = self._tree_size(size2)
        if not 0 < size1 <= size2:
            raise InvalidInputError(f"a consistency proof needs 0 < size1 <= size2, got {size1} and {size2}")
        return self._resolve(consistency_plan(size1, size2))

    # ----------------------------------------------------------------- appends
    def append(self, data: bytes) -> int:
        """Append one entry; return its index once it is durable."""
        return self.submit([data]).result()

    def append_many(self, items: Sequence[bytes]) -> range:
        """Append entries as one contiguous run; return their indices once all are durable."""
        items = list(items)
        if not items:
            return range(self.size(), self.size())
        futures = self._enqueue([items[i : i + self.max_batch] for i in range(0, len(items), self.max_batch)])
        first = futures[0].result()
        for f in futures[1:]:
            f.result()
        return range(first, first + len(items))

    def submit(self, items: Sequence[bytes]) -> Future[int]:
        """Queue entries to be committed together; the future gives the first index once durable."""
        return self._enqueue([list(items)])[0]

    def _enqueue(self, chunks: list[list[bytes]]) -> list[Future[int]]:
        if self._signer is None:
            raise StorageError(f"log {self.path} is open read-only (no signing key)")
        if self._closed:
            raise StorageError(f"log {self.path} is closed")
        for chunk in chunks:
            for data in chunk:
                if not isinstance(data, (bytes, bytearray)):
                    raise InvalidInputError(f"log entries must be bytes, got {type(data).__name__}")
                if len(data) > MAX_ENTRY_BYTES:
                    raise InvalidInputError(f"entry of {len(data)} bytes exceeds the {MAX_ENTRY_BYTES}-byte limit")
        jobs = []
        # Hashing and tiling happen here, in the caller's thread, while the writer thread spends its
        # time in SQLite with the GIL released: the two stages overlap. Holding the lock keeps one
        # caller's chunks adjacent, so its indices are contiguous.
        with self._edge_lock:
            if self._writer is None:
                self._writer = threading.Thread(target=self._write_loop, name="ledgermind-log-writer", daemon=True)
                self._writer.start()
            for chunk in chunks:
                if chunk:
                    job = _Job([d if type(d) is bytes else bytes(d) for d in chunk])
                    self._prepare(job)
                    self._queue.put(job)
                    jobs.append(job)
        return [job.future for job in jobs]

    def _prepare(self, job: _Job) -> None:
        """Extend the in-memory tree edge with the job's entries. Caller holds ``_edge_lock``."""
        if self._edge is None:
            conn = self._db()
            conn.execute("BEGIN")  # one consistent snapshot of size, tiles and bundles
            try:
                self._edge = self._load_edge(conn)
            finally:
                conn.execute("COMMIT")
        sha = hashlib.sha256
        leaf_hashes = [sha(LEAF_PREFIX + d).digest() for d in job.items]
        job.start = self._edge.size
        job.generation = self._generation
        job.prev_root = self._edge.root()
        job.tiles, job.bundles = self._edge.extend(job.items, leaf_hashes)
        job.root = self._edge.root()

    def _load_edge(self, conn: sqlite3.Connection) -> TreeEdge:
        row = conn.execute("SELECT max(size) FROM checkpoints").fetchone()
        return TreeEdge.load(
            row[0] or 0,
            lambda tl, ti: self._tile(conn, tl, ti, cache=False),
            self._node_getter(conn, cache=False),
            lambda b: self._bundle(conn, b),
        )

    def _next_job(self, timeout: float | None) -> object:
        if self._pending:
            return self._pending.popleft()
        if timeout is None:
            return self._queue.get()
        return self._queue.get(timeout=timeout) if timeout > 0 else self._queue.get_nowait()

    def _write_loop(self) -> None:
        conn = self._connect()
        # a large page cache keeps the B-tree pages an append touches in memory: halves commit time
        conn.execute("PRAGMA cache_size=-65536")
        stop = False
        while not stop:
            first = self._next_job(None)
            if first is _STOP:
                break
            assert isinstance(first, _Job)
            jobs, count = [first], len(first.items)
            deadline = time.monotonic() + self.max_latency
            while count < self.max_batch:
                try:
                    nxt = self._next_job(deadline - time.monotonic())
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                assert isinstance(nxt, _Job)
                if count + len(nxt.items) > self.max_batch:
                    self._commit_and_ack(conn, jobs)
                    jobs, count = [], 0
                jobs.append(nxt)
                count += len(nxt.items)
            if jobs:
                self._commit_and_ack(conn, jobs)

    def _commit_and_ack(self, conn: sqlite3.Connection, jobs: list[_Job]) -> None:
        try:
            self._commit(conn, jobs)
        except BaseException as e:  # the callers get the reason; the writer keeps serving
            with self._edge_lock:  # jobs prepared on top of this group must be redone
                self._generation += 1
                self._edge = None
            for job in jobs:
                job.future.set_exception(e)
            return
        for job in jobs:
            job.future.set_result(job.start)

    def _commit(self, conn: sqlite3.Connection, jobs: list[_Job]) -> None:
        assert self._signer is not None
        with self._transaction(conn):
            row = conn.execute("SELECT size, root FROM checkpoints ORDER BY size DESC LIMIT 1").fetchone()
            prev_size, prev_root = (row[0], bytes(row[1])) if row else (0, EMPTY_ROOT)
            if jobs[0].start != prev_size or any(job.generation != self._generation for job in jobs):
                self._redo(conn, jobs)  # another process appended, or an earlier commit failed
            if jobs[0].prev_root != prev_root:
                # The edge the jobs extend is not the tree the log last signed: signing would fork it.
                raise StorageError(
                    f"log {self.path}: stored tree does not match its last signed checkpoint; run 'ledgermind log fsck'"
                )
            tiles: dict[int, tuple[int, int, bytes]] = {}
            bundles: dict[int, bytes] = {}
            for job in jobs:  # a later version of a partial tile or bundle supersedes an earlier one
                tiles.update((t[0], t) for t in job.tiles)
                bundles.update(job.bundles)
            _insert_rows(conn, "tiles(id, width, hashes)", list(tiles.values()))
            _insert_rows(conn, "bundles(id, data)", list(bundles.items()))
            last = jobs[-1]
            size, root = last.start + len(last.items), last.root
            # jobs only ever append to the edge that had prev_root, so the new tree is consistent with
            # the last signed one by construction (fsck and the tests check it with real proofs)
            note = self._signer.sign(Checkpoint(self.origin, size, root).body())
            conn.execute("INSERT INTO checkpoints(size, root, note, time) VALUES (?, ?, ?, ?)", (size, root, note, time.time()))

    def _redo(self, conn: sqlite3.Connection, jobs: list[_Job]) -> None:
        """Re-prepare ``jobs`` and every queued job on the tree as stored. Runs inside the write transaction."""
        with self._edge_lock:  # no new job can be prepared meanwhile
            self._generation += 1
            self._edge = self._load_edge(conn)
            queued: list[object] = list(self._pending)
            self._pending.clear()
            while True:
                try:
                    queued.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            for job in [*jobs, *queued]:
                if isinstance(job, _Job):
                    self._prepare(job)
            self._pending.extend(queued)

    def _bundle(self, conn: sqlite3.Connection, bundle: int) -> list[bytes]:
        row = conn.execute("SELECT data FROM bundles WHERE id = ?", (bundle,)).fetchone()
        if row is None:
            raise StorageError(f"log {self.path} is missing bundle {bundle}")
        return decode_bundle(bytes(row[0]))

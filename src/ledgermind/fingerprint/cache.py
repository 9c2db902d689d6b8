"""SQLite cache of file digests, keyed by what ``stat`` says about the file.

A row maps (real path, shard size) to the digest together with the stat it was computed for: device, inode,
size, mtime and ctime (ns). A lookup returns the digest only if the file's current stat matches every one of them,
so a row is never trusted for a file whose stat changed. One row per path: a changed file replaces its old row.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass

from ledgermind.errors import StorageError
from ledgermind.fingerprint.shards import SHARD_SIZE

__all__ = ["CacheKey", "FingerprintCache", "RACY_WINDOW_NS"]

RACY_WINDOW_NS = 2_000_000_000
"""Files modified less than this long before hashing started are hashed but not cached.

File timestamps are coarse (a kernel tick; 1-2 s on FAT or ext3), so a file rewritten right after we stat it can
keep its size and mtime. Same idea as git's "racily clean" index entries. 2 s covers the coarsest common
filesystem; such a file is simply hashed again on the next call.
"""

_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS file_digest (
    path       TEXT    NOT NULL,
    shard_size INTEGER NOT NULL,
    dev        TEXT    NOT NULL,  -- TEXT: st_dev and st_ino can exceed SQLite's signed 64-bit INTEGER
    ino        TEXT    NOT NULL,
    size       INTEGER NOT NULL,
    mtime_ns   INTEGER NOT NULL,
    ctime_ns   INTEGER NOT NULL,
    sha256     TEXT    NOT NULL,
    PRIMARY KEY (path, shard_size)
) WITHOUT ROWID
"""


@dataclass(frozen=True)
class CacheKey:
    """What a cached digest is valid for: a real path and the stat of the file at that path."""

    path: str
    dev: int
    ino: int
    size: int
    mtime_ns: int
    ctime_ns: int

    @classmethod
    def of(cls, real_path: str, st: os.stat_result) -> CacheKey:
        """Key for the file at ``real_path`` (already resolved with ``os.path.realpath``) with stat ``st``."""
        return cls(real_path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class FingerprintCache:
    """File digests remembered across calls and processes, in one SQLite file (WAL mode).

    Safe to open from several processes and to share between threads. Writes of one ``fingerprint`` call go in
    one transaction. Losing the file loses nothing but time.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        """Open (creating if needed) the cache at ``path``; its folder must exist.

        Raises StorageError if the file is not a cache of this version or cannot be opened.
        """
        self.path = os.fspath(path)
        self._lock = threading.Lock()
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves so one call is exactly one transaction.
            self._db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None, check_same_thread=False)
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open fingerprint cache {self.path}: {exc}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            # A cache may lose its last writes on power loss without harm; NORMAL keeps WAL consistent anyway.
            self._db.execute("PRAGMA synchronous=NORMAL")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.execute(_SCHEMA)
                self._db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")
                self._db.execute("COMMIT")
            elif version != _SCHEMA_VERSION:
                raise StorageError(
                    f"fingerprint cache {self.path} has schema version {version}, expected {_SCHEMA_VERSION}"
                )
        except sqlite3.Error as exc:
            self._db.close()
            raise StorageError(f"cannot use fingerprint cache {self.path}: {exc}") from None
        except StorageError:
            self._db.close()
            raise

    def get(self, key: CacheKey) -> str | None:
        """Return the cached digest (hex) for ``key``, or None unless every stat field matches the stored row."""
        with self._lock:
            row = self._query(
                "SELECT dev, ino, size, mtime_ns, ctime_ns, sha256 FROM file_digest WHERE path = ? AND shard_size = ?",
                (key.path, SHARD_SIZE),
            )
        if row is None:
            return None
        dev, ino, size, mtime_ns, ctime_ns, digest = row
        if (dev, ino, size, mtime_ns, ctime_ns) != (str(key.dev), str(key.ino), key.size, key.mtime_ns, key.ctime_ns):
            return None
        return digest

    def put_many(self, entries: Iterable[tuple[CacheKey, str]], *, hashing_started_ns: int | None = None) -> int:
        """Store ``(key, digest hex)`` pairs in one transaction; return how many rows were written.

        Entries whose mtime is within RACY_WINDOW_NS of ``hashing_started_ns`` (default: now) are skipped,
        see RACY_WINDOW_NS. Raises StorageError if the database cannot be written.
        """
        cutoff = (time.time_ns() if hashing_started_ns is None else hashing_started_ns) - RACY_WINDOW_NS
        rows = [
            (k.path, SHARD_SIZE, str(k.dev), str(k.ino), k.size, k.mtime_ns, k.ctime_ns, digest)
            for k, digest in entries
            if k.mtime_ns < cutoff
        ]
        if not rows:
            return 0
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany("INSERT OR REPLACE INTO file_digest VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                raise StorageError(f"cannot write fingerprint cache {self.path}: {exc}") from None
        return len(rows)

    def close(self) -> None:
        """Close the database. Idempotent."""
        with self._lock:
            self._db.close()

    def __enter__(self) -> FingerprintCache:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _query(self, sql: str, params: tuple) -> tuple | None:
        try:
            return self._db.execute(sql, params).fetchone()
        except sqlite3.ProgrammingError as exc:  # closed database
            raise StorageError(f"fingerprint cache {self.path} is closed") from exc
        except sqlite3.Error as exc:
            raise StorageError(f"cannot read fingerprint cache {self.path}: {exc}") from None

"""A durable key-value store for py-evm: one SQLite file (WAL, ``synchronous=FULL``) behind py-evm's ``BaseDB``.

py-evm keeps its whole chain (headers, bodies, receipts, state trie nodes, lookups) in a flat bytes-to-bytes
store and no longer ships a disk backend. ``SQLiteKV`` is that store with explicit transaction boundaries:
writes go to an in-memory buffer that reads see at once, and only ``commit()`` writes them to the file, in one
SQLite transaction that is durable when ``commit()`` returns. A crash before ``commit()`` loses the buffer and
nothing else, so the file always holds the state as of the last commit.

Wrap it in ``eth.db.atomic.AtomicDB`` before giving it to a py-evm chain (the chain needs ``atomic_batch``).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from eth.db.backends.base import BaseDB

from ledgermind.errors import StorageError

_DELETED = None  # buffer marker: the key is deleted in the pending transaction

_SCHEMA = "CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID"
_GET = "SELECT v FROM kv WHERE k = ?"
_PUT_ROW = "(?,?)"
_MAX_ROWS_PER_STATEMENT = 15_000  # 2 parameters per row, under SQLite's 32766 host-parameter limit
DEFAULT_CACHE_ENTRIES = 50_000


class SQLiteKV(BaseDB):
    """py-evm's ``BaseDB`` over one SQLite file, with writes buffered until ``commit()``.

    Committed values are cached in memory (up to ``cache_entries``; the cache is simply emptied when full): a
    block's execution reads the same few trie nodes again and again. The cache is only coherent because one
    process writes the file (the embedded chain holds an exclusive lock on its folder).

    Not thread-safe by itself: callers serialize access (the embedded chain holds a lock around every use).
    The file is created if missing. Raises StorageError if the file cannot be opened as a SQLite database.
    """

    def __init__(self, path: str | os.PathLike[str], *, cache_entries: int = DEFAULT_CACHE_ENTRIES) -> None:
        self.path = Path(path)
        self._pending: dict[bytes, bytes | None] = {}
        self._cache: dict[bytes, bytes] = {}
        self._cache_entries = cache_entries
        self._lock = threading.Lock()  # guards close() against a concurrent commit from another thread
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, so a transaction is exactly one commit().
            # Every statement is a constant string, so sqlite3's statement cache keeps each one prepared.
            self._conn: sqlite3.Connection | None = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, cached_statements=64
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise StorageError(f"cannot open the chain database {self.path}: {e}") from e

    # ------------------------------------------------------------------ BaseDB
    def __getitem__(self, key: bytes) -> bytes:
        pending = self._pending
        if key in pending:
            value = pending[key]
            if value is _DELETED:
                raise KeyError(key)
            return value
        value = self._cache.get(key)
        if value is not None:
            return value
        row = self._connection().execute(_GET, (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        self._remember(key, row[0])
        return row[0]

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._pending[key] = value

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        self._pending[key] = _DELETED

    def _exists(self, key: bytes) -> bool:
        pending = self._pending
        if key in pending:
            return pending[key] is not _DELETED
        if key in self._cache:
            return True
        return self._connection().execute(_GET, (key,)).fetchone() is not None

    # ------------------------------------------------------------------ transactions
    @property
    def dirty(self) -> bool:
        """True if there are writes that ``commit()`` has not made durable yet."""
        return bool(self._pending)

    def commit(self) -> None:
        """Write every buffered change in one SQLite transaction; durable (fsynced) when this returns.

        Raises StorageError if SQLite fails; the buffer is then kept, so a later commit can retry.
        """
        with self._lock:
            if not self._pending:
                return
            conn = self._connection()
            puts = [(k, v) for k, v in self._pending.items() if v is not _DELETED]
            dels = [(k,) for k, v in self._pending.items() if v is _DELETED]
            try:
                conn.execute("BEGIN IMMEDIATE")
                # few multi-row statements rather than one step per row: each step re-takes the GIL
                for i in range(0, len(puts), _MAX_ROWS_PER_STATEMENT):
                    chunk = puts[i : i + _MAX_ROWS_PER_STATEMENT]
                    conn.execute(
                        "INSERT OR REPLACE INTO kv VALUES " + ",".join([_PUT_ROW] * len(chunk)),
                        [x for row in chunk for x in row],
                    )
                if dels:
                    conn.executemany("DELETE FROM kv WHERE k = ?", dels)
                conn.execute("COMMIT")
            except sqlite3.Error as e:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise StorageError(f"cannot write the chain database {self.path}: {e}") from e
            cache = self._cache
            for k, v in self._pending.items():
                if v is _DELETED:
                    cache.pop(k, None)
                else:
                    self._remember(k, v)
            self._pending.clear()

    def rollback(self) -> None:
        """Drop every buffered change: the store reads as of the last ``commit()`` again."""
        self._pending.clear()

    def close(self) -> None:
        """Close the file. Uncommitted writes are dropped (commit first to keep them). Idempotent."""
        with self._lock:
            self._pending.clear()
            self._cache.clear()
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # ------------------------------------------------------------------ helpers
    def _remember(self, key: bytes, value: bytes) -> None:
        if len(self._cache) >= self._cache_entries:
            self._cache.clear()  # cheaper than LRU bookkeeping on every read; hot nodes come back at once
        self._cache[key] = value

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError(f"the chain database {self.path} is closed")
        return self._conn

    def __iter__(self) -> Iterator[bytes]:
        raise NotImplementedError("SQLiteKV cannot be iterated")

    def __repr__(self) -> str:
        return f"SQLiteKV({str(self.path)!r}, pending={len(self._pending)})"

"""The provider's durable access state in one SQLite file (``LEDGERMIND_HOME/access.sqlite``).

- ``offers``: the private datasets this provider serves: asset digest -> its encrypted-asset manifest blob.
- ``nonces``: every access-request nonce accepted so far, per holder. A nonce is recorded (committed with
  ``synchronous=FULL``) *before* anything is served, so a replayed request is refused even after a crash or a
  restart. Requests carry an expiry no later than ``max_validity`` after they are checked, so a nonce whose
  request has expired can never be accepted again anyway and is pruned.

Safe to share between threads (one connection behind a lock) and between processes (SQLite's own locking:
two providers on one home cannot both accept the same nonce).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from ledgermind.errors import StorageError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS offers (
    asset TEXT PRIMARY KEY, manifest TEXT NOT NULL, name TEXT NOT NULL, offered_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS nonces (
    holder TEXT NOT NULL, nonce TEXT NOT NULL, asset TEXT NOT NULL, expiry INTEGER NOT NULL,
    used_at INTEGER NOT NULL, PRIMARY KEY (holder, nonce));
CREATE INDEX IF NOT EXISTS nonces_expiry ON nonces(expiry);
"""
PRUNE_EVERY = 1000  # accepted nonces between two prunes of expired ones


@dataclass(frozen=True)
class Offer:
    asset: str
    manifest: str  # digest of the encrypted-asset manifest blob
    name: str


class AccessStore:
    """Offers and used nonces. ``close()`` when done."""

    def __init__(self, path: str | os.PathLike[str], busy_timeout: float = 5.0) -> None:
        """Open (creating if needed) the database at ``path``. Raises StorageError if it is not usable."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._accepted = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=busy_timeout, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # a nonce acknowledged as used must survive a crash
            self._db.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as e:
            raise StorageError(f"access database {self.path} is not usable: {e}") from e

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> AccessStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ offers
    def offer(self, asset: str, manifest: str, name: str, now: int) -> None:
        """Serve ``asset`` from the encrypted-asset manifest ``manifest`` (replacing an earlier offer of it)."""
        self._run("INSERT OR REPLACE INTO offers VALUES (?, ?, ?, ?)", (asset, manifest, name, now))

    def offered(self, asset: str) -> Offer | None:
        """The offer of ``asset``, or None if this provider does not serve it."""
        with self._lock:
            row = self._db.execute("SELECT asset, manifest, name FROM offers WHERE asset = ?", (asset,)).fetchone()
        return Offer(*row) if row else None

    def offers(self) -> list[Offer]:
        with self._lock:
            return [Offer(*r) for r in self._db.execute("SELECT asset, manifest, name FROM offers ORDER BY name")]

    # ------------------------------------------------------------------ nonces
    def use_nonce(self, holder: str, nonce: int, asset: str, expiry: int, now: int) -> bool:
        """Record ``nonce`` as used by ``holder``; True if it was new, False if it had been used before.

        Durable when it returns True. Requires ``expiry`` to be the request's expiry (it bounds how long the
        record must be kept). Raises StorageError if the database cannot be written.
        """
        try:
            with self._lock:
                self._db.execute(
                    "INSERT INTO nonces VALUES (?, ?, ?, ?, ?)", (holder.lower(), str(nonce), asset, expiry, now)
                )
                self._accepted += 1
        except sqlite3.IntegrityError:
            return False
        except sqlite3.Error as e:
            raise StorageError(f"cannot record the nonce in {self.path}: {e}") from e
        if self._accepted % PRUNE_EVERY == 0:
            self.prune(now)
        return True

    def prune(self, now: int) -> None:
        """Forget nonces whose request expired before ``now``: such a request is refused as expired anyway."""
        self._run("DELETE FROM nonces WHERE expiry < ?", (now,))

    def _run(self, sql: str, args: tuple[object, ...]) -> None:
        try:
            with self._lock:
                self._db.execute(sql, args)
        except sqlite3.Error as e:
            raise StorageError(f"cannot write {self.path}: {e}") from e

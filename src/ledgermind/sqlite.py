"""The one way ledgermind opens a small SQLite database of its own (indexes, queues): WAL, autocommit,
schema applied, and a one-line StorageError when the file is not usable."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from ledgermind.errors import StorageError


def open_db(path: str | os.PathLike[str], schema: str, what: str, timeout: float = 5.0, *,
            any_thread: bool = False) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` and apply ``schema``; ``what`` names it in errors.
    With ``any_thread`` the connection may be used from threads other than its creator's (the caller keeps
    multi-statement transactions from interleaving)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    try:
        db = sqlite3.connect(p, timeout=timeout, isolation_level=None, check_same_thread=not any_thread)
        db.execute("PRAGMA journal_mode=WAL")
        db.executescript(schema)
    except sqlite3.DatabaseError as e:
        raise StorageError(f"{what} {p} is not usable: {e}") from e
    return db

"""A local SQLite index of the registry, derived from the log and rebuilt from it at any time.

It maps digests, names and subjects to log indices so lookups are fast; it is never trusted for
verification: every answer it gives is re-checked against the log and its proofs.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ledgermind.errors import InvalidInputError, NotFoundError
from ledgermind.log.store import LogStore
from ledgermind.sqlite import open_db
from ledgermind.statements import DATASET, MODEL

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS statements (
    log_index INTEGER PRIMARY KEY, predicate_type TEXT NOT NULL, subject TEXT NOT NULL, signer TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS statements_subject ON statements(subject);
CREATE TABLE IF NOT EXISTS assets (
    digest TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, log_index INTEGER NOT NULL,
    signer TEXT NOT NULL, registered_at TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS assets_name ON assets(name);
CREATE TABLE IF NOT EXISTS lineage (
    child TEXT NOT NULL, parent TEXT NOT NULL, relation TEXT NOT NULL, PRIMARY KEY (child, parent, relation));
CREATE TABLE IF NOT EXISTS local_paths (path TEXT PRIMARY KEY, digest TEXT NOT NULL);
"""

KINDS = {DATASET: "dataset", MODEL: "model"}


@dataclass(frozen=True)
class AssetRow:
    digest: str
    kind: str
    name: str
    log_index: int
    signer: str
    registered_at: str


class RegistryIndex:
    """Index of the statements in one log. Call ``sync`` to catch up with the log before reading."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.db = open_db(self.path, _SCHEMA, "registry index")

    def close(self) -> None:
        self.db.close()

    def _indexed(self) -> int:
        row = self.db.execute("SELECT value FROM meta WHERE key = 'indexed'").fetchone()
        return int(row[0]) if row else 0

    def sync(self, store: LogStore) -> int:
        """Index every log entry not indexed yet; return how many were added.

        If the log has another origin (a different log), the index is rebuilt from scratch, and readers see the
        previous index until the new one is committed whole. Several processes and threads may sync the same
        index: an index ahead of this ``store``'s view of the same log was advanced by a syncer that saw more of
        it, and is left as it is (rebuilding it would empty it under every reader).
        """
        origin = self.db.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
        if origin == (store.origin,) and self._indexed() >= store.size():
            return 0
        try:
            self.db.execute("BEGIN IMMEDIATE")
            origin = self.db.execute("SELECT value FROM meta WHERE key = 'origin'").fetchone()
            start = self._indexed()
            size = store.size()
            if origin not in (None, (store.origin,)):
                for table in ("meta", "statements", "assets", "lineage"):
                    self.db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
                start = 0
            elif start >= size:
                self.db.execute("ROLLBACK")
                return 0
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('origin', ?)", (store.origin,))
            for index, entry in store.entries(start, size):
                self._add(index, entry)
            self.db.execute("INSERT OR REPLACE INTO meta VALUES ('indexed', ?)", (str(size),))
            self.db.execute("COMMIT")
        except BaseException:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            raise
        return size - start

    def _add(self, index: int, entry: bytes) -> None:
        # statements were fully verified on submission; here we only need their routing fields
        try:
            env = json.loads(entry)
            statement = json.loads(base64.b64decode(env["payload"]))
            signer = env["signatures"][0]["keyid"]
            ptype = statement["predicateType"]
            subject = statement["subject"][0]
            digest, name = subject["digest"]["sha256"], subject["name"]
            predicate = statement["predicate"]
        except (ValueError, KeyError, IndexError, TypeError):
            return  # not a statement of ours: verification will say so if anyone asks about it
        self.db.execute("INSERT OR REPLACE INTO statements VALUES (?, ?, ?, ?)", (index, ptype, digest, signer))
        kind = KINDS.get(ptype)
        if kind is None:
            return
        if self.db.execute("SELECT 1 FROM assets WHERE digest = ?", (digest,)).fetchone():
            return  # the first registration of a digest is the one that counts
        self.db.execute(
            "INSERT INTO assets VALUES (?, ?, ?, ?, ?, ?)",
            (digest, kind, name, index, signer, predicate.get("registeredAt", "")),
        )
        if kind == "model":
            for ref in predicate.get("trainingDatasets", []):
                self.db.execute("INSERT OR IGNORE INTO lineage VALUES (?, ?, 'trainedOn')", (digest, ref["digest"]))
            for ref in predicate.get("parentModels", []):
                self.db.execute("INSERT OR IGNORE INTO lineage VALUES (?, ?, 'derivedFrom')", (digest, ref["digest"]))

    # ------------------------------------------------------------------ reads
    def asset(self, digest: str) -> AssetRow | None:
        row = self.db.execute("SELECT * FROM assets WHERE digest = ?", (digest,)).fetchone()
        return AssetRow(*row) if row else None

    def assets(self, kind: str | None = None) -> list[AssetRow]:
        sql = "SELECT * FROM assets" + (" WHERE kind = ?" if kind else "") + " ORDER BY log_index"
        return [AssetRow(*r) for r in self.db.execute(sql, (kind,) if kind else ())]

    def parents(self, digest: str) -> list[tuple[str, str]]:
        """(parent digest, relation) pairs, in a stable order."""
        return list(self.db.execute("SELECT parent, relation FROM lineage WHERE child = ? ORDER BY relation, parent", (digest,)))

    def statements_about(self, digest: str) -> Iterator[tuple[int, str, str]]:
        """(log index, predicate type, signer) of every statement whose first subject is ``digest``."""
        yield from self.db.execute(
            "SELECT log_index, predicate_type, signer FROM statements WHERE subject = ? ORDER BY log_index", (digest,)
        )

    def statements(self, predicate_type: str | None = None, subject: str | None = None, signer: str | None = None,
                   start: int = 0, limit: int = 100, descending: bool = False) -> list[tuple[int, str, str, str]]:
        """(log index, predicate type, subject digest, signer) of indexed statements matching every filter given,
        from log index ``start`` on (down from it when ``descending``), at most ``limit``."""
        where, args = ["log_index " + ("<=" if descending else ">=") + " ?"], [start]
        for column, value in (("predicate_type", predicate_type), ("subject", subject)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if signer is not None:
            where.append("lower(signer) = lower(?)")
            args.append(signer)
        order = "DESC" if descending else ""
        return list(self.db.execute(
            f"SELECT log_index, predicate_type, subject, signer FROM statements WHERE {' AND '.join(where)} "
            f"ORDER BY log_index {order} LIMIT ?", (*args, limit)))

    def resolve(self, ref: str) -> AssetRow:
        """Find an asset by digest (with or without ``sha256:``), unique digest prefix (>= 6 hex), or name.

        Raises NotFoundError, or InvalidInputError when the reference is ambiguous.
        """
        key = ref.strip().lower().removeprefix("sha256:")
        if len(key) == 64 and all(c in "0123456789abcdef" for c in key):
            row = self.asset(key)
            if row is None:
                raise NotFoundError(f"no registered asset has digest {key}")
            return row
        if len(key) >= 6 and all(c in "0123456789abcdef" for c in key):
            rows = self.db.execute("SELECT * FROM assets WHERE digest LIKE ? || '%' LIMIT 3", (key,)).fetchall()
            if len(rows) == 1:
                return AssetRow(*rows[0])
            if len(rows) > 1:
                raise InvalidInputError(f"digest prefix {key} is ambiguous: give more characters")
        rows = self.db.execute("SELECT * FROM assets WHERE name = ? ORDER BY log_index", (ref.strip(),)).fetchall()
        if len(rows) == 1:
            return AssetRow(*rows[0])
        if len(rows) > 1:
            digests = ", ".join(r[0][:12] for r in rows)
            raise InvalidInputError(f"name {ref!r} matches {len(rows)} assets ({digests}): use a digest")
        raise NotFoundError(f"no registered asset matches {ref!r} (by digest, digest prefix or name)")

    def remember_path(self, path: Path, digest: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO local_paths VALUES (?, ?)", (str(path.resolve()), digest))

    def digest_for_path(self, path: Path) -> str | None:
        row = self.db.execute("SELECT digest FROM local_paths WHERE path = ?", (str(path.resolve()),)).fetchone()
        return row[0] if row else None
